"""The verified cache of runtime exports: each model's ONNX / ncnn files under `$VSR_CACHE` (default
`~/.cache/vsrlab/runtimes/<hash of the weights>/`), written under a temporary name and renamed, then
recorded with their sha256, size and mtime (`verified.json`); a file that no longer matches its record is
compared with PyTorch again before use. Also: whether an export folder's own graph files are the ones
export.py wrote (`exported`)."""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from torch import nn

from vsr.io.atomic import write_atomic
from vsr.runtimes.model_files import MODEL_JSON, sha256_file

# Part of every cache key: raise it when exported graphs of the same weights change, so that old
# cached exports are not reused (2: recurrent ONNX graphs before it had wrong flows at sizes off the
# flow pyramid's multiple; 3: recurrent runners reconstruct only the kept frames, so remembered
# timings from before are not comparable; 4: single-frame runners take a few frames a call, likewise).
EXPORT_VERSION = 4


def cache_root() -> Path:
    return Path(os.environ.get("VSR_CACHE") or Path.home() / ".cache" / "vsrlab") / "runtimes"


def shown(path: Path) -> str:
    """`path` as a message shows it: under the home folder as ~/..."""
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)


def weights_key(model: nn.Module) -> str:
    """A hash of the model's class and weights (names, shapes, values): the cache folder name."""
    digest = hashlib.sha256(f"{type(model).__qualname__} export v{EXPORT_VERSION}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def exported(folder: Path | None, fmt: str, file: str) -> bool:
    """`folder/file` was written by export.py with these weights: model.json lists it under
    `formats.<fmt>` with the file's sha256, and so the format's other files (`<x>_file`,
    `<x>_sha256`): a stale file from an earlier export is not used."""
    if folder is None or not (folder / file).is_file():
        return False
    try:
        entry = json.loads((folder / MODEL_JSON).read_text()).get("formats", {}).get(fmt) or {}
    except (OSError, ValueError):
        return False
    if entry.get("file") != file:
        return False
    files = {key[: -len("file")]: name for key, name in entry.items() if key.endswith("file")}
    return all(isinstance(name, str) and (folder / name).is_file()
               and entry.get(f"{prefix}sha256") == sha256_file(folder / name) for prefix, name in files.items())


MANIFEST = "verified.json"  # in each cache folder: file name -> its sha256, size and mtime when checked


def file_record(path: Path) -> dict:
    stat = path.stat()
    return {"sha256": sha256_file(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def record_verified(folder: Path, files: tuple[str, ...]) -> None:
    """Record `files` as they are now: checked (freshly exported, or their output compared)."""
    manifest = {**_manifest(folder), **{name: file_record(folder / name) for name in files}}
    write_atomic(folder / MANIFEST, json.dumps(manifest, indent=1))


def is_verified(folder: Path, files: tuple[str, ...]) -> bool:
    """Whether every file is as recorded: same size, mtime and content hash."""
    manifest = _manifest(folder)
    return all((folder / name).is_file() and manifest.get(name) == file_record(folder / name) for name in files)


def export_atomically(folder: Path, files: tuple[str, ...], export) -> None:
    """`export(tmp)` writes `files` into a temporary folder beside them; they are renamed into
    `folder` when complete (a killed or failed export leaves no half file there) and recorded."""
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        export(work)
        for name in files:
            os.replace(work / name, folder / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record_verified(folder, files)


def cached_runner(build, folder: Path, files: tuple[str, ...], export):
    """`build()` on the cached `files`, exported first when missing; the runner's `unchecked` names
    the files when they are not as recorded (their output must be compared again before use)."""
    if not all((folder / name).is_file() for name in files):
        export_atomically(folder, files, export)
    runner = build()
    runner.unchecked = None if is_verified(folder, files) else (folder, files)
    return runner
