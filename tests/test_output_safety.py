"""Nothing outside a command's own output is written or removed: clip folder names from file names
(datasets/prepare.py frames), upscale.py's claim on its output (one run at a time, exact stale-partial
cleanup), and the output checks made before any frame is computed."""

import importlib.util
from pathlib import Path

import pytest

from vsr.io.synthetic import write_test_video

ROOT = Path(__file__).resolve().parents[1]


def load_prepare():
    spec = importlib.util.spec_from_file_location("prepare", ROOT / "datasets" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", ["...mp4", "..mp4", ".mp4"])
def test_prepare_frames_never_removes_outside_its_clip_folders(tmp_path, capsys, name):
    """A video whose stem is `..` or `.` (or hidden) would name the output root's parent or the root
    itself as its clip folder, which prepare.py replaces: refused in one line before any decoding."""
    prepare = load_prepare()
    videos, data = tmp_path / "videos", tmp_path / "data"
    videos.mkdir()
    write_test_video(videos / "walk.mp4", num_frames=3, width=32, height=24, audio=False)
    assert prepare.main(["frames", str(videos / "walk.mp4"), str(data / "root")]) == 0
    (data / "bystander.txt").write_text("keep me")
    (videos / "walk.mp4").rename(videos / name)
    before = tree(tmp_path)
    capsys.readouterr()
    assert prepare.main(["frames", str(videos / name), str(data / "root"), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and name in err and "rename" in err
    assert tree(tmp_path) == before
