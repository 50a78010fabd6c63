"""upscale.py on images (PNG/JPEG/WebP) and stills of a video (frames upscaled with temporal context)."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny_models import tiny

from vsr.errors import UserError
from vsr.export import export
from vsr.inference import Upscaler, run
from vsr.io.synthetic import write_test_video
from vsr.io.video import read_frames

TINY_RECURRENT = {"_target_": "vsr.models.RecurrentRRDBNet", "scale": 4, "num_feat": 8, "num_block": 1,
                  "num_block_prop": 1, "num_grow_ch": 4, "flow_levels": 2, "flow_channels": [8, 8]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, folder)
    return folder


def photo(path: Path, channels: int = 3) -> Path:
    from skimage import data

    image = cv2.cvtColor(data.astronaut()[:40, :56], cv2.COLOR_RGB2BGR)
    if channels == 4:
        image = np.dstack((image, np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))))
    cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize("suffix_in, suffix_out", [(".png", ".png"), (".jpg", ".jpg"), (".webp", ".webp"),
                                                   (".png", ".jpeg")])
def test_image_is_upscaled_by_the_model(exported, tmp_path, suffix_in, suffix_out):
    src = photo(tmp_path / f"photo{suffix_in}")
    out = tmp_path / f"photo_x4{suffix_out}"
    summary = run({"input": str(src), "output": str(out), "weights": str(exported)})
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (160, 224, 3) and summary["output_size"] == [224, 160]
    # it is the model's output for the image as a one-frame clip (PNG is lossless: exact)
    rgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)
    expected = Upscaler.from_dir(exported, device="cpu").upscale_clip(
        torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0]
    expected = (expected.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    got = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    tolerance = 0 if suffix_out == ".png" else 12
    assert np.abs(got.astype(int) - expected).mean() <= tolerance
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({src.name, out.name})


def test_png_alpha_is_kept(exported, tmp_path):
    src = photo(tmp_path / "rgba.png", channels=4)
    out = tmp_path / "rgba_x4.png"
    run({"input": str(src), "output": str(out), "weights": str(exported)})
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (160, 224, 4)
    assert image[:, 0, 3].mean() < 10 and image[:, -1, 3].mean() > 245


def test_stills_are_frames_upscaled_with_their_neighbours(exported, tmp_path):
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=30, width=40, height=32, audio=False)
    out = tmp_path / "stills"
    summary = run({"input": str(clip), "output": str(out), "weights": str(exported), "stills": [3, 20, 29],
                   "chunk": 6, "overlap": 2})
    names = sorted(p.name for p in out.iterdir())
    assert names == ["clip_frame000003.png", "clip_frame000020.png", "clip_frame000029.png"]
    assert len(summary["stills"]) == 3
    frames = torch.from_numpy(read_frames(clip, None)).permute(0, 3, 1, 2).float() / 255
    upscaler = Upscaler.from_dir(exported, chunk=6, overlap=2, device="cpu")
    to_uint8 = lambda x: (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    still = cv2.cvtColor(cv2.imread(str(out / "clip_frame000020.png")), cv2.COLOR_BGR2RGB)
    # frame 20 in the middle of a window of chunk + 2*overlap = 10 frames (5 each side)
    with_context = to_uint8(upscaler.upscale_clip(frames[15:26])[5])
    alone = to_uint8(upscaler.upscale_clip(frames[20:21])[0])
    assert np.array_equal(still, with_context)
    assert not np.array_equal(still, alone)  # the neighbours were used
    last = cv2.cvtColor(cv2.imread(str(out / "clip_frame000029.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(last, to_uint8(upscaler.upscale_clip(frames[24:30])[5]))


@pytest.mark.parametrize("options, message", [
    ({"stills": [5, 99]}, "99 is beyond its end"), ({"stills": [-1]}, "not a frame index"),
    ({"stills": [2], "interpolate": 2}, "does not take interpolate")])
def test_bad_stills_raise_and_write_nothing(exported, tmp_path, options, message):
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=10, width=40, height=32, audio=False)
    with pytest.raises(UserError, match=message):
        run({"input": str(clip), "output": str(tmp_path / "stills"), "weights": str(exported), **options})
    assert not (tmp_path / "stills").exists()


def test_image_errors_are_one_line(exported, tmp_path):
    src = photo(tmp_path / "photo.png")
    for output, message in (("photo_x4.mp4", "an image input writes an image"), ("photo.png", "is the input")):
        with pytest.raises(UserError, match=message):
            run({"input": str(src), "output": str(tmp_path / output), "weights": str(exported), "overwrite": True})
    # interpolate= with an image: tests/test_interp.py (through upscale.py, one line, no file)


def test_stills_report_their_progress(exported, tmp_path, capsys, monkeypatch):
    """stills= used to print nothing until the last still was written (4.5 minutes for two on the
    shipped model): now a line per still written, the count of stills done, and the summary's JSON."""
    from vsr.inference import progress

    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0)  # a progress line at every change (else every 30 s)
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=30, width=40, height=32, audio=False)
    out = tmp_path / "stills"
    summary = run({"input": str(clip), "output": str(out), "weights": str(exported), "stills": [3, 20, 29],
                   "chunk": 6, "overlap": 2})
    stdout, err = capsys.readouterr()
    lines = err.splitlines()
    written = [line for line in lines if line.startswith("still ")]
    assert written == [f"still {k}/3: frame {i} -> {out / f'clip_frame{i:06d}.png'}" for k, i in enumerate((3, 20, 29), 1)]
    counts = [int(re.search(r" (\d)/3 stills \[", line).group(1)) for line in lines if line.startswith("stills: ")]
    assert counts == sorted(counts) and {1, 2, 3} <= set(counts)
    assert lines.index(written[0]) < next(i for i, line in enumerate(lines) if " 2/3 stills" in line)
    assert json.loads(stdout.splitlines()[-1]) == summary and summary["model_seconds"] > 0
