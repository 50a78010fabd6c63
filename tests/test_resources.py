"""Resource bounds: what cannot fit the machine is refused in one line before anything big is
allocated (the output size against memory, a model.json's architecture against its weights).
Each test is a row of docs/reliability.md ("Concurrency and resources")."""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_upscale import TINY_RRDB
from tiny_models import tiny

from vsr.export import export
from vsr.io.synthetic import write_test_video

ROOT = Path(__file__).resolve().parents[1]
ADDRESS_LIMIT = 8 * 2**30  # a run that tried to allocate without bound fails here instead of taking the machine


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resources")
    export(tiny(TINY_RRDB), TINY_RRDB, folder / "w")
    return folder, write_test_video(folder / "clip.mp4", num_frames=4, width=64, height=48)


def upscale_py(*overrides: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """upscale.py as a user runs it, under an address-space limit (the old code's runaway
    allocations end there, not in the kernel's OOM killer)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))

    return subprocess.run([sys.executable, "upscale.py", "progress=false", *overrides], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, preexec_fn=limit)


def one_line_refusal(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("change", [{"num_feat": 100_000}, {"num_block": 1_000_000}], ids=["wide", "deep"])
def test_huge_architecture_in_model_json_is_refused_before_building(setup, tmp_path, change):
    """A model.json (its weights' hash still valid) describing a far larger architecture than its
    weights: refused from the safetensors header and a meta-device build, in seconds."""
    folder, clip = setup
    weights = tmp_path / "w"
    weights.mkdir()
    for name in ("model.json", "model.safetensors"):
        (weights / name).write_bytes((folder / "w" / name).read_bytes())
    meta = json.loads((weights / "model.json").read_text())
    meta["architecture"] |= change
    (weights / "model.json").write_text(json.dumps(meta))
    started = time.monotonic()
    result = upscale_py(f"input={clip}", f"output={tmp_path / 'out.mp4'}", f"weights={weights}", timeout=90)
    one_line_refusal(result, "model.safetensors")
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow
def test_output_too_large_for_memory_is_refused_at_once(setup, tmp_path):
    """outscale=1000 (64x48 -> 64000x48000) ran until the OOM killer ended it: refused in one line
    naming outscale=, before any frame is decoded."""
    folder, clip = setup
    started = time.monotonic()
    result = upscale_py(f"input={clip}", f"output={tmp_path / 'out.mp4'}", f"weights={folder / 'w'}", "outscale=1000")
    one_line_refusal(result, "lower outscale= or fit=")
    assert "64x48 -> 64000x48000 needs about" in result.stderr
    assert time.monotonic() - started < 60
    assert list(tmp_path.iterdir()) == []


def test_memory_check_names_the_option_to_change(setup, tmp_path, monkeypatch):
    """With less memory than a run's estimate: the error names tile= when tiles would fit, chunk=
    when the output frames of a call are what does not fit, outscale= / fit= when nothing would;
    it comes before the first frame is read (no file)."""
    import vsr.inference.video as job
    from vsr.errors import UserError
    from vsr.inference import Upscaler, memory, run

    model = tiny(TINY_RRDB)
    untiled = Upscaler(model, 2, temporal=False, chunk=8, device="cpu")
    outputs, features = memory.peak_bytes(untiled, 1920, 1080)
    tiled = memory.needed_bytes(untiled, 1920, 1080, tile=64)
    for free, words in ((outputs + features - 1, "pass tile=256"), (tiled - 1, "pass tile=64 chunk=1"),
                        (outputs // 8, "lower outscale= or fit=")):
        monkeypatch.setattr(memory, "available_bytes", lambda: free)
        with pytest.raises(UserError, match=words) as err:
            memory.check_fits(untiled, 1920, 1080)
        assert "1920x1080 -> 3840x2160 needs about" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(memory, "available_bytes", lambda: outputs + features)
    memory.check_fits(untiled, 1920, 1080)  # exactly enough: accepted

    folder, clip = setup
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    monkeypatch.setattr(job, "stream_frames", lambda *a: pytest.fail("a frame was read before the memory check"))
    monkeypatch.setattr(job, "scan_frames", lambda *a: pytest.fail("the input was decoded before the memory check"))
    with pytest.raises(UserError, match="needs about"):
        run({"input": str(clip), "output": str(tmp_path / "out.mp4"), "weights": str(folder / "w"), "progress": False})
    assert list(tmp_path.iterdir()) == []


def test_tile_auto_tiles_only_when_whole_frames_would_not_fit(setup, monkeypatch, capsys):
    """tile=auto (upscale.py's default) runs whole frames when they fit, else the largest tile that
    does, and says so; tile=0 given explicitly is kept, and refused when it cannot fit."""
    import pytest

    from vsr.errors import UserError
    from vsr.inference import memory
    from vsr.inference.video import make_upscaler

    folder, _ = setup
    options = {"weights": str(folder / "w"), "chunk": 8}
    probe = make_upscaler(options)
    whole = memory.needed_bytes(probe, 1920, 1080, tile=0)
    by_tile = {t: memory.needed_bytes(probe, 1920, 1080, tile=t) for t in memory.AUTO_TILES}
    assert whole > by_tile[512] > by_tile[256] > by_tile[64]
    for free, tile in ((whole, 0), (by_tile[512], 512), (by_tile[256], 256), (by_tile[64] - 1, 0)):
        monkeypatch.setattr(memory, "available_bytes", lambda: free)
        upscaler = make_upscaler(options, (1920, 1080))
        assert upscaler.tile == tile
        said = capsys.readouterr().err
        assert (f"so the model runs on {tile}-pixel tiles" in said) == (tile > 0), said
        assert ("1920x1080 -> 3840x2160 on whole frames would need about" in said) == (tile > 0), said
    with pytest.raises(UserError, match="pass tile=64 chunk=1"):
        memory.check_fits(upscaler, 1920, 1080)  # not even tile=64 fits at chunk=8: refused, as before
    monkeypatch.setattr(memory, "available_bytes", lambda: by_tile[256])
    explicit = make_upscaler({**options, "tile": 0}, (1920, 1080))
    assert explicit.tile == 0
    with pytest.raises(UserError, match="pass tile=256"):
        memory.check_fits(explicit, 1920, 1080)
