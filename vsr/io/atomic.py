"""Files written whole or not at all: a hidden temporary sibling, flushed to disk, renamed over the target."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def temporary_name(target: Path) -> Path:
    """`.NAME.tmp-PID` beside `target`: hidden, and one per process writing it."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@contextmanager
def replacing(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into. When the block ends it is flushed, fsynced and
    renamed over `path`; when it raises, it is removed. A kill at any moment leaves the old file or the
    new one, never a torn one (at most the hidden temporary, which a later write of the folder may remove)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` through `replacing`."""
    with replacing(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)
