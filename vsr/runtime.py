"""Process-level settings the entry points apply before heavy work."""

import ctypes
import ctypes.util
import sys

# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Stop glibc from handing freed tensor memory back to the OS after every step.

    By default glibc mmaps large blocks and unmaps them on free, so each training step
    page-faults all of its activations again; on virtual machines where a first touch is
    expensive this made a CPU training step several times slower (experiments/benchmarks.md).
    Blocks up to 32 MB (glibc's maximum) now come from a heap that is never trimmed.
    Returns False where this is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        ok &= libc.mallopt(_M_TOP_PAD, 1024 * 1024 * 1024)
        return bool(ok)
    except (OSError, AttributeError):
        return False
