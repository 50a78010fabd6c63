"""One run at a time per output file, and nothing of other runs or other outputs touched.

`OutputClaim(path)` holds an exclusive `fcntl.flock` on a hidden `.NAME.lock` beside the output from
the checks made before any work until the finished file is renamed into place. A second run on the
same output finds the lock taken and stops. The kernel drops the lock when its holder dies, so the
lock, not a process id (which means nothing to a run in another PID namespace or on another host
sharing the folder), tells a live run from a killed one: every partial file of this output found
while holding the lock was left by a killed run and is removed.
"""

import fcntl
import os
from pathlib import Path
from typing import Literal

from vsr.errors import UserError


def partial_path(path: Path) -> Path:
    """Hidden sibling of `path` with the same extension (the muxer is chosen from it), named after
    this process: `.STEM.partial-PID.EXT`."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def is_partial_of(path: Path, name: str) -> bool:
    """Whether the file `name` is a partial file of `path` (`.STEM.partial-DIGITS.EXT`). Compared as
    text, not as a glob pattern: `clip[1].mp4` or `clip?.mp4` match only their own files."""
    head, tail = f".{path.stem}.partial-", path.suffix
    pid = name[len(head):len(name) - len(tail)]
    return name.startswith(head) and name.endswith(tail) and pid.isascii() and pid.isdigit()


def name_limit(folder: Path) -> int:
    """The longest file name in bytes that `folder`'s file system (or its nearest existing parent's) takes."""
    for parent in (folder, *folder.parents):
        if parent.is_dir():
            try:
                return os.pathconf(parent, "PC_NAME_MAX")
            except (OSError, ValueError):
                break
    return 255


class OutputClaim:
    """Claim the output `path` for this run (see the module docstring); a context manager.

    On entry, before any work: the hidden names must fit the file system, the folder must be
    writable, no other run may be writing `path`, and `path` must not exist unless `overwrite`.
    Write to `partial`, then `publish(partial)`; leaving the context releases the claim.
    """

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.partial = partial_path(self.path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.fd: int | None = None

    def __enter__(self) -> "OutputClaim":
        self._check_name_length()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = self._lock()
        except OSError as err:
            raise UserError(f"output={self.path}: cannot write in {self.path.parent} ({err.strerror or err})") from None
        try:
            if self.path.exists() and not self.overwrite:
                raise UserError(f"output={self.path} already exists; pass overwrite=true to replace it")
            self._remove_stale_partials()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc) -> Literal[False]:  # exceptions pass through
        self.release()
        return False

    def _check_name_length(self) -> None:
        limit = name_limit(self.path.parent)
        longest = max(len(os.fsencode(p.name)) for p in (self.partial, self.lock_path))
        if longest > limit:
            raise UserError(f"output={self.path}: the name is too long: its hidden partial file "
                            f"(.NAME.partial-PID{self.path.suffix}) would need {longest} bytes, over the file "
                            f"system's {limit}; shorten the name by {longest - limit} bytes")

    def _lock(self) -> int:
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UserError(f"output={self.path} is being written by another run now (it holds "
                                f"{self.lock_path.name}); wait for it to finish or choose another output") from None
            # the previous holder removes the file when it is done: a lock on a removed file claims nothing
            held = os.fstat(fd)
            try:
                on_disk = os.stat(self.lock_path, follow_symlinks=False)
            except FileNotFoundError:
                on_disk = None
            if on_disk is not None and (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
                return fd
            os.close(fd)

    def _remove_stale_partials(self) -> None:
        for entry in os.scandir(self.path.parent):
            if is_partial_of(self.path, entry.name):
                Path(entry.path).unlink(missing_ok=True)

    def publish(self, partial: Path) -> None:
        """Rename the finished `partial` file to the output (under the claim; a file that appeared
        there meanwhile by other means is kept unless `overwrite`)."""
        if self.path.exists() and not self.overwrite:
            partial.unlink(missing_ok=True)
            raise UserError(f"output={self.path} appeared while this run was writing it; nothing replaced "
                            "(pass overwrite=true to replace it)")
        os.replace(partial, self.path)

    def release(self) -> None:
        """Remove the lock file and drop the lock (removed first: a run waiting on this file then
        sees it gone and locks a fresh one)."""
        if self.fd is None:
            return
        self.lock_path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None
