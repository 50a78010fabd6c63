"""Property tests: any frame size, scale, frame count and chunk/overlap/tile setting gives the right
output shape or one clear UserError, never another exception. Small example counts, tiny models."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_upscale import TINY_RECURRENT, TINY_RRDB, tiny
from torch import nn

from vsr.errors import UserError
from vsr.inference import Upscaler

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Nearest(nn.Module):
    """Stand-in generator: nearest-neighbour xS on `(B, T, 3, H, W)` (any size, instantly)."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, lr):
        return lr.repeat_interleave(self.scale, -1).repeat_interleave(self.scale, -2)


sizes = st.integers(1, 40)
options = st.fixed_dictionaries({
    "chunk": st.integers(-1, 6), "overlap": st.integers(-1, 3), "tile": st.integers(-1, 24),
    "tile_pad": st.integers(-1, 12),
    "outscale": st.none() | st.floats(0.1, 10) | st.sampled_from([0, -2]),
})


def check_stream(upscaler_or_error, frames: list[np.ndarray]) -> None:
    """The property: one output frame per input, each at `output_size`, uint8."""
    upscaler = upscaler_or_error
    h, w = frames[0].shape[:2]
    out_w, out_h = upscaler.output_size(w, h)
    out = list(upscaler.stream(iter(frames)))
    assert len(out) == len(frames)
    assert all(f.shape == (out_h, out_w, 3) and f.dtype == np.uint8 for f in out)


def build(model, scale, temporal, opts) -> Upscaler | None:
    try:
        return Upscaler(model, scale, temporal=temporal, device="cpu", **opts)
    except UserError as err:
        assert "\n" not in str(err)
        bad = [k for k in ("chunk", "overlap", "tile", "tile_pad") if opts[k] < (1 if k == "chunk" else 0)]
        assert bad or (opts["outscale"] is not None and opts["outscale"] <= 0), f"refused good options: {err}"
        return None


@FAST
@given(h=sizes, w=sizes, num=st.integers(1, 9), scale=st.sampled_from([2, 3, 4, 8]), temporal=st.booleans(),
       opts=options)
def test_upscaler_any_size_and_settings(h, w, num, scale, temporal, opts):
    upscaler = build(Nearest(scale), scale, temporal, opts)
    if upscaler is not None:
        frames = [np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8) for i in range(num)]
        check_stream(upscaler, frames)


@FAST
@given(h=st.integers(1, 20), w=st.integers(1, 20), num=st.integers(1, 4), tile=st.integers(0, 12),
       tile_pad=st.integers(0, 6), chunk=st.integers(1, 3))
def test_real_models_any_size(h, w, num, tile, tile_pad, chunk):
    """The tiny RRDB (x2 Real-ESRGAN layout: pads to even sizes) and the recurrent flow model
    (SpyNet pyramid) on every size from 1x1 up, tiled or not."""
    frames = [np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8) for i in range(num)]
    for config, model in ((TINY_RRDB, RRDB), (TINY_RECURRENT, RECURRENT)):
        upscaler = Upscaler(model, config["scale"], temporal=config is TINY_RECURRENT, chunk=chunk, overlap=1,
                            tile=tile, tile_pad=tile_pad, device="cpu")
        check_stream(upscaler, frames)


RRDB, RECURRENT = tiny(TINY_RRDB), tiny(TINY_RECURRENT)


# ---- whole upscale runs and train.py config overrides ----------------------------------------------

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vsr.export import export
    from vsr.io.synthetic import write_test_video

    folder = tmp_path_factory.mktemp("fuzz")
    export(tiny(TINY_RRDB), TINY_RRDB, folder / "w")
    return folder, write_test_video(folder / "clip.mp4", num_frames=3, width=10, height=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=st.fixed_dictionaries({}, optional={
    "chunk": st.integers(-1, 4), "tile": st.integers(-1, 8), "crf": st.integers(-5, 60),
    "scale": st.sampled_from([1, 2, 3, 4, 5, 8]), "fit": st.sampled_from(["2x2", "1x1", "40x30", "big", "9x"]),
    "denoise": st.floats(-1, 2), "sharpen": st.floats(-1, 2), "precision": st.sampled_from(["fp32", "fp8", "bf16"]),
    "reader": st.sampled_from(["auto", "pyav", "decord", "ffmpeg"]), "output": st.sampled_from(["o.mp4", "o.gif"]),
}))
def test_upscale_options_give_a_video_or_one_line(setup, opts, tmp_path_factory):
    from vsr.inference import run
    from vsr.io.video import probe

    folder, clip = setup
    out = tmp_path_factory.mktemp("out") / opts.pop("output", "o.mp4")
    try:
        summary = run({"input": str(clip), "output": str(out), "weights": str(folder / "w"), "progress": False,
                       **opts})
    except UserError as err:
        assert "\n" not in str(err) and not out.exists()
        event(f"refused: {str(err).split('=')[0]}")
        return
    event("written")
    assert summary["frames"] == probe(out).num_frames == 3


TRAIN_OVERRIDES = st.lists(st.sampled_from([
    "scale=2", "scale=3", "scale=4", "scale=8", "scale=5", "scale=0",
    "data.train.patch_size=24", "data.train.patch_size=30", "data.train.patch_size=64", "data.train.patch_size=7",
    "data.train.num_frames=1", "data.train.num_frames=2", "data.train.num_frames=0",
    "data.batch_size=1", "data.batch_size=0", "data.train.num_clips=0",
    "trainer.max_steps=0", "trainer.max_steps=2", "loss.temporal.weight=0", "loss.pingpong.weight=1",
    "model.alignment=none", "model.alignment=optical", "ckpt_path=/nonexistent.ckpt",
]), max_size=4)


@settings(max_examples=25, deadline=None)
@given(overrides=TRAIN_OVERRIDES)
def test_train_config_overrides_build_or_fail_with_one_line(overrides):
    """train.py's checks plus building the data and the generator (what happens before the first
    step): either everything builds and a training batch has the configured shape, or one UserError."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from vsr.errors import find_user_error
    from vsr.training.job import validate

    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["loss=gan", "data.train.num_clips=2", "data.val.num_clips=1", "model.num_feat=8",
                                          "model.num_block=1", *overrides])
    try:
        validate(cfg)
        data = instantiate(cfg.data)
        generator = instantiate(cfg.model)
        sample = data.train_set[0]
    except Exception as err:
        user_error = find_user_error(err)
        assert user_error is not None, f"{overrides}: {type(err).__name__}: {err}"
        assert "\n" not in str(user_error)
        event("refused")
        return
    event("built")
    patch, frames = cfg.data.train.patch_size, cfg.data.train.num_frames
    assert sample["hr"].shape == (frames, 3, patch, patch)
    assert sample["lr"].shape == (frames, 3, patch // cfg.scale, patch // cfg.scale)
    with torch.no_grad():
        assert generator(sample["lr"][None]).shape == (1, *sample["hr"].shape)


# ---- upscale.py itself: random option sets give a correct video or one line, nothing else --------

UPSCALE_PY_OPTIONS = st.fixed_dictionaries({}, optional={  # about one value in four is invalid
    "chunk": st.sampled_from(["0", "1", "3", "auto"]), "overlap": st.sampled_from(["-1", "0", "1", "2"]),
    "tile": st.sampled_from(["-1", "0", "4", "16"]), "tile_pad": st.sampled_from(["-1", "0", "4", "8"]),
    "crf": st.sampled_from(["60", "0", "17", "51"]), "scale": st.sampled_from(["5", "2", "3", "8"]),
    "outscale": st.sampled_from(["0", "1000000.0", "0.3", "1.5", "3", "4"]),
    "fit": st.sampled_from(["big", "100000x100000", "2x2", "40x30", "64x64"]),
    "denoise": st.sampled_from(["2", "0", "0.5", "1"]), "sharpen": st.sampled_from(["-1", "0", "0.5", "1"]),
    "precision": st.sampled_from(["fp8", "fp32", "bf16", "auto"]),
    "reader": st.sampled_from(["ffmpeg", "auto", "pyav", "decord"]),
    "ensemble": st.sampled_from(["3", "1", "2", "4"]), "interpolate": st.sampled_from(["0", "1", "2", "3"]),
    "interpolator": st.sampled_from(["nope", "blend", "repeat", "flow"]),
    "runtime": st.sampled_from(["nope", "auto", "eager", "onnxruntime"]),
})


def expected_size(width: int, height: int, model_scale: int, opts: dict) -> tuple[int, int]:
    """The documented output size: fit= box, else outscale= / scale= / the model's factor; even."""
    if "fit" in opts:
        box_w, box_h = map(int, opts["fit"].split("x"))
        factor = min(box_w / width, box_h / height)
    else:
        factor = float(opts.get("outscale", opts.get("scale", model_scale)))
    out_w, out_h = max(1, round(width * factor)), max(1, round(height * factor))
    return out_w - out_w % 2, out_h - out_h % 2


ADDRESS_LIMIT = 8 * 2**30


@pytest.fixture(scope="module")
def upscale_py_setup(tmp_path_factory):
    from vsr.export import export
    from vsr.io.synthetic import write_test_video

    folder = tmp_path_factory.mktemp("upscale_py")
    export(tiny(TINY_RRDB), TINY_RRDB, folder / "rrdb")
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, folder / "recurrent")
    clips = {"10x6.mp4": write_test_video(folder / "10x6.mp4", num_frames=3, width=10, height=6),
             "18x10.mkv": write_test_video(folder / "18x10.mkv", num_frames=4, width=18, height=10, audio=False)}
    return folder, clips


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opts=UPSCALE_PY_OPTIONS, model=st.sampled_from(["rrdb", "recurrent"]),
       clip=st.sampled_from(["10x6.mp4", "18x10.mkv"]), output=st.sampled_from(["o.gif", "o.mp4", "o.mkv", "o.mov"]))
def test_upscale_py_random_options_give_a_video_or_one_line(upscale_py_setup, tmp_path_factory, opts, model, clip,
                                                            output):
    """Through the real entry point: exit 0 with a video of every frame (times interpolate=) at the
    documented size, or exit 2 with one `error:` line; no traceback, no other file in the folder."""
    import os
    import resource
    import subprocess
    import sys

    from vsr.io.video import probe

    folder, clips = upscale_py_setup
    out_dir = tmp_path_factory.mktemp("out")
    out = out_dir / output
    env = dict(os.environ, VSR_CACHE=str(folder / "cache"))  # runtime=auto's exports stay in the test folder

    def limit():  # a run that allocates without bound fails here instead of taking the machine down
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_LIMIT, ADDRESS_LIMIT))

    result = subprocess.run([sys.executable, "upscale.py", f"input={clips[clip]}", f"output={out}",
                             f"weights={folder / model}", "progress=false", *(f"{k}={v}" for k, v in opts.items())],
                            cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                            timeout=300, preexec_fn=limit)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert list(out_dir.iterdir()) == []
        event("refused: " + ("memory" if "needs about" in lines[0] else lines[0][7:].split("=")[0]))
        return
    assert result.returncode == 0, result.stderr[-3000:]
    event("written")
    assert [p.name for p in out_dir.iterdir()] == [output]
    info, source = probe(out), probe(clips[clip])
    scale = (TINY_RRDB if model == "rrdb" else TINY_RECURRENT)["scale"]
    assert info.num_frames == source.num_frames * int(opts.get("interpolate", 1))
    assert (info.width, info.height) == expected_size(source.width, source.height, scale, opts)
