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


# ---- upscale.py: one run per output, exact stale-partial cleanup, output checks before the model -------
import os
import shutil
import subprocess
import sys
import time

from test_upscale import exported  # noqa: F401  (the tiny x2 export, a fixture)

from vsr.errors import UserError
from vsr.inference import run

GONE_PID = 4_194_000  # above Linux's default pid_max: a process id of another namespace, unknown here


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", num_frames=4, width=16, height=12, fps=25)


def upscale(**options) -> dict:
    return run({"progress": False, "chunk": 2, **options})


def paused_writer(output: Path, exported: Path, clip: Path, ready: Path, go: Path) -> subprocess.Popen:
    """upscale.py's job in another process that stops after its first frame until `go` exists; its
    process id is one this namespace does not know (as for a container or host sharing the folder)."""
    script = f"""
import os, sys, time
sys.path[:0] = [{str(ROOT)!r}]
os.getpid = lambda: {GONE_PID}
import vsr.inference.video as job
from vsr.errors import one_line_errors
original = job.stream_frames
def paused(path, reader):
    for i, frame in enumerate(original(path, reader)):
        yield frame
        if i == 0:
            open({str(ready)!r}, "w").close()
            deadline = time.monotonic() + 120
            while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
                time.sleep(0.02)
job.stream_frames = paused
one_line_errors(job.upscale_video)({dict(input=str(clip), output=str(output), weights=str(exported),
                                         progress=False, chunk=1)!r})
"""
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), proc.communicate()


@pytest.mark.parametrize("overwrite", [False, True])
def test_two_runs_on_one_output_never_both_succeed(exported, clip, tmp_path, overwrite):
    """A run from another PID namespace is writing out.mp4 (its partial file named after a process id
    unknown here): a second run on the same output stops in one line and deletes nothing of it; the
    first one then finishes and its file is the output."""
    out, ready, go = tmp_path / "out.mp4", tmp_path / "ready", tmp_path / "go"
    first = paused_writer(out, exported, clip, ready, go)
    try:
        wait_for(ready, first)
        partials = sorted(p.name for p in tmp_path.glob(".out.partial-*"))
        with pytest.raises(UserError, match="being written by another run") as err:
            upscale(input=str(clip), output=str(out), weights=str(exported), overwrite=overwrite)
        assert "\n" not in str(err.value)
        assert sorted(p.name for p in tmp_path.glob(".out.partial-*")) == partials and not out.exists()
    finally:
        go.touch()
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert "upscaled 4 frames 16x12 -> 32x24" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go", "out.mp4", "ready"]
    with pytest.raises(UserError, match="already exists"):  # and after it, without overwrite=true
        upscale(input=str(clip), output=str(out), weights=str(exported))


@pytest.mark.parametrize("name, other", [("clip[1].mp4", "clip1.mp4"), ("clip?.mp4", "clipX.mp4"),
                                         ("c*.mp4", "cat.mp4"), ("out.mp4", "out.partial-7.mp4")])
def test_stale_partials_are_exactly_this_outputs(exported, clip, tmp_path, name, other):
    """A killed run's partial file of this output is removed by the next run on it; another output's
    partial file is never touched, whatever glob characters the names hold."""
    output, neighbour = tmp_path / name, tmp_path / other
    own = tmp_path / f".{output.stem}.partial-{GONE_PID}{output.suffix}"
    theirs = tmp_path / f".{neighbour.stem}.partial-{GONE_PID}{neighbour.suffix}"
    own.write_bytes(b"left by a killed run")
    theirs.write_bytes(b"another output's")
    upscale(input=str(clip), output=str(output), weights=str(exported))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, theirs.name])


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if the model is loaded: these mistakes must be found before any model work."""
    import vsr.inference.video as job

    def loaded(cfg):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(job, "make_upscaler", loaded)


def test_output_mistakes_are_found_before_the_model_runs(exported, clip, tmp_path, no_model):
    """An unknown x264 preset and a name whose hidden partial name passes the file system's 255 bytes
    failed after the first model window ('writing failed at frame 1 (Invalid argument)')."""
    cases = {"preset": ({"output": str(tmp_path / "out.mp4"), "preset": "fastest"},
                        "preset=fastest is not supported; choose one of: ultrafast, superfast"),
             "long name": ({"output": str(tmp_path / ("a" * 245 + ".mp4"))}, "name is too long")}
    for case, (options, words) in cases.items():
        with pytest.raises(UserError, match=words) as err:
            upscale(input=str(clip), weights=str(exported), **options)
        assert "\n" not in str(err.value), case
        assert sorted(p.name for p in tmp_path.iterdir()) == [], case


def read_only(folder: Path, argv: list[str]) -> list[str]:
    """`argv` run where `folder` cannot be written: chmod for a user; for root (who ignores file
    modes) a read-only bind mount in a private mount namespace."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return argv
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("root without unshare: no way to make a folder read-only")
    return ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder), *argv]


def test_read_only_output_folder_is_found_before_the_model_runs(exported, clip, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    script = f"""
import sys
sys.path[:0] = [{str(ROOT)!r}]
import vsr.inference.video as job
from vsr.errors import one_line_errors
def loaded(cfg):
    raise AssertionError("the model was loaded before the output was checked")
job.make_upscaler = loaded
one_line_errors(job.upscale_video)({dict(input=str(clip), output=str(folder / "out.mp4"),
                                         weights=str(exported), progress=False)!r})
"""
    result = subprocess.run(read_only(folder, [sys.executable, "-c", script]), cwd=ROOT, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120)
    folder.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() in (f"error: output={folder / 'out.mp4'}: cannot write in {folder} ({cause})"
                                     for cause in ("Read-only file system", "Permission denied"))
    assert list(folder.iterdir()) == []
