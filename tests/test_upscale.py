"""Upscaler and upscale.py: tiles and chunks agree with whole-frame runs; videos keep frames, fps, audio;
bad inputs give one line and leave no file."""

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import tiny
from torch import nn
from torch.nn import functional as F

from vsr.errors import UserError
from vsr.export import export
from vsr.inference import Upscaler, load, run
from vsr.inference.tiling import run_tiled_recurrent
from vsr.inference.windows import plan_windows
from vsr.io.images import to_frames, to_tensor
from vsr.io.synthetic import moving_pattern, write_test_video
from vsr.io.video import probe

ROOT = Path(__file__).resolve().parents[1]
TINY_RECURRENT = {"_target_": "vsr.models.RecurrentRRDBNet", "scale": 4, "num_feat": 8, "num_block": 1,
                  "num_block_prop": 1, "num_grow_ch": 4, "flow_levels": 2, "flow_channels": [8, 8]}
TINY_RRDB = {"_target_": "vsr.models.RRDBNet", "scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
             "upsampler": "nearest_conv", "global_skip": False}



class FrameIndexModel(nn.Module):
    """Stand-in 'temporal' model: nearest x2 upsampling, so each output shows which input it came from."""

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return lr.repeat_interleave(2, -1).repeat_interleave(2, -2)


@settings(max_examples=40, deadline=None)
@given(num=st.integers(1, 30), chunk=st.integers(1, 8), overlap=st.integers(0, 4))
def test_stream_yields_every_frame_once_in_order(num, chunk, overlap):
    frames = [np.full((2, 3, 3), i, np.uint8) for i in range(num)]
    upscaler = Upscaler(FrameIndexModel(), 2, temporal=True, chunk=chunk, overlap=overlap, device="cpu")
    out = list(upscaler.stream(iter(frames)))
    assert [int(f[0, 0, 0]) for f in out] == list(range(num))
    assert all(f.shape == (4, 6, 3) for f in out)


def test_auto_chunk_shrinks_for_large_frames(monkeypatch):
    """chunk=auto holds at most WINDOW_BYTES of output frames per call (1080p -> 4K fits in
    memory); small frames keep the full length; an explicit chunk is kept as given."""
    from vsr.inference import upscaler as module

    calls = []

    class Recorder(FrameIndexModel):
        def forward(self, lr):
            calls.append(lr.shape[1])
            return super().forward(lr)

    monkeypatch.setattr(module, "WINDOW_BYTES", 3 * 4 * (32 * 32) * 3)  # three x2 outputs of 16x16 frames
    frames = [np.full((16, 16, 3), i, np.uint8) for i in range(11)]
    out = list(Upscaler(Recorder(), 2, temporal=True, overlap=1, device="cpu").stream(iter(frames)))
    assert [int(f[0, 0, 0]) for f in out] == list(range(11))
    assert max(calls) == 3 + 2  # chunk 3 + one context frame each side
    assert Upscaler(Recorder(), 2, overlap=1, device="cpu").fit_chunk(4, 4) == module.CLIP_FRAMES - 2
    assert Upscaler(Recorder(), 2, chunk=9, device="cpu").fit_chunk(16, 16) == 9
    real = Upscaler(Recorder(), 4, device="cpu")
    monkeypatch.undo()
    assert 1 <= real.fit_chunk(1920, 1080) * 3 * 4 * (1920 * 4) * (1080 * 4) <= module.WINDOW_BYTES


def test_sharpen_keeps_flat_areas_and_steepens_edges():
    """A blur must keep brightness: flat images pass unchanged (every channel, small frames whose
    kernels are cropped too); an edge is steepened by sharpen."""
    from vsr.inference import filters

    for size in ((8, 8), (3, 40)):
        flat = torch.rand(1, 3, 1, 1).expand(2, 3, *size).contiguous()
        assert torch.allclose(filters.gaussian_blur(flat), flat, atol=1e-6)
        assert torch.allclose(filters.sharpen(flat, 0.5), flat, atol=1e-6)
    edge = torch.zeros(1, 3, 16, 16)
    edge[..., 8:] = 0.8
    step = lambda x: float(x[0, 0, 8, 8] - x[0, 0, 8, 7])  # noqa: E731
    assert step(edge) < step(filters.sharpen(edge + 0.1, 0.5))


def moving_scene(frames: int = 5, shift: int = 2, noise: float = 0.0, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A textured scene panning `shift` LR pixels a frame: HR `(T, 3, 96, 96)` and its x2 LR, with
    independent noise on each upscaled frame (what varies from frame to frame: compression, model error)."""
    from vsr.inference import filters

    torch.manual_seed(seed)
    world = filters.gaussian_blur(torch.rand(1, 3, 96, 160 + 2 * shift * frames), 2.0)
    world = (world - world.mean()) * 6 + 0.5
    hr = torch.stack([world[0, :, :, 2 * shift * t: 2 * shift * t + 96] for t in range(frames)]).clamp(0, 1)
    lr = F.avg_pool2d(hr, 2)
    return hr, lr, (hr + noise * torch.randn_like(hr)).clamp(0, 1)


def test_temporal_denoise_averages_noise_away_and_follows_motion():
    """denoise=: noise that differs between frames is averaged out along the motion (closer to the
    clean frames, without smearing the moving texture); off, or a single frame, changes nothing."""
    from vsr.inference import filters
    from vsr.metrics import psnr

    hr, lr, noisy = moving_scene(noise=0.05)
    denoised = filters.temporal_denoise(lr, noisy, 1.0)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # the panning scene enters at a border
    before, after = psnr(noisy[inner], hr[inner]).mean(), psnr(denoised[inner], hr[inner]).mean()
    assert after > before + 1.0, f"{before:.2f} -> {after:.2f} dB"
    # some frames only (a window's kept frames): their neighbours are read, not filtered
    assert torch.equal(filters.temporal_denoise(lr, noisy, 1.0, range(2, 4)), denoised[2:4])
    clean = filters.temporal_denoise(lr, hr, 1.0)  # motion followed: the clean frames stay as they are
    assert psnr(clean[inner], hr[inner]).mean() > 40
    assert torch.equal(filters.temporal_denoise(lr, noisy, 0.0), noisy)
    assert torch.equal(filters.temporal_denoise(lr[:1], noisy[:1], 1.0), noisy[:1])


def test_temporal_denoise_ignores_a_neighbour_that_does_not_match():
    """A scene cut (or an occlusion) makes the neighbour disagree with the frame: it gets no weight."""
    from vsr.inference import filters

    hr, lr, _ = moving_scene(frames=2)
    cut = torch.stack([hr[0], 1 - hr[1]])
    out = filters.temporal_denoise(torch.stack([lr[0], 1 - lr[1]]), cut, 1.0)
    assert (out - cut).abs().mean() < 0.01


def test_denoise_windows_give_each_kept_frame_its_neighbours():
    """A single-frame model with denoise= reads one context frame on each side of a chunk: the
    streamed output equals denoising the whole clip at once, chunk boundaries included, and each
    frame goes through the model once (a context frame's output is taken from the window before)."""
    from vsr.inference import filters

    _, lr, _ = moving_scene(frames=7)
    up = Upscaler(tiny(TINY_RRDB), 2, temporal=False, device="cpu", runtime="eager", chunk=3, denoise=0.8)
    assert up.overlap == 1 and Upscaler(tiny(TINY_RRDB), 2, temporal=False, device="cpu").overlap == 0
    streamed = torch.cat(list(up.stream_chunks(list(lr))))
    with torch.no_grad():
        whole = filters.temporal_denoise(lr, tiny(TINY_RRDB)(lr[None])[0].clamp(0, 1), 0.8)
    assert streamed.shape == whole.shape and (streamed - whole).abs().max() < 1e-4
    assert up.computed_frames == 7


def test_to_frames_rounds_and_clamps_like_the_reference():
    """The one-pass uint8 conversion (in place, on inference tensors too) equals the plain formula."""
    torch.manual_seed(0)
    with torch.inference_mode():
        clip = torch.randn(3, 3, 5, 7) * 0.6 + 0.5  # values outside [0, 1] too
    expected = (clip.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    frames = to_frames(clip)
    assert len(frames) == 3 and frames[0].shape == (5, 7, 3) and frames[0].flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(np.stack(frames), expected)


@pytest.mark.parametrize("scale, tile, tile_pad, size", [(4, 16, 40, (45, 58)), (2, 32, 80, (45, 110))])
def test_tiled_equals_untiled(scale, tile, tile_pad, size):
    """Tiles (of sizes that do not divide the frame) change nothing once tile_pad / 2 covers the
    receptive radius: 17 convs at LR for x4 (~18 px); x2 Real-ESRGAN layout works on 2x2-folded
    pixels, so ~37 px, and tiles must start on even pixels."""
    model = tiny(TINY_RRDB | {"scale": scale})
    clip = torch.rand(2, 3, *size)
    whole = Upscaler(model, scale, temporal=False, device="cpu").upscale_clip(clip)
    tiled = Upscaler(model, scale, temporal=False, tile=tile, tile_pad=tile_pad, device="cpu").upscale_clip(clip)
    error = (tiled - whole).abs().max().item()
    print(f"x{scale} tiled vs untiled max abs error: {error:.2e}")
    assert tiled.shape == whole.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert error < 1e-4


@pytest.mark.parametrize("ensemble", [1, 2])
def test_recurrent_tiled_equals_untiled(ensemble):
    """Recurrent models propagate over whole frames and reconstruct tile by tile, so tiles change
    nothing (the flow network and the hidden state see the whole frame) once tile_pad / 2 covers
    the reconstruction's receptive radius; context frames are dropped before reconstruction.
    On the shipped weights (trained flows and states: a random tiny model hardly propagates) the
    old whole-model tiling differed by 2.9e-3 here (0.03-0.06 on 320x180 real frames)."""
    model = load(ROOT / "experiments" / "shipped_x4" / "model")[0]
    clip = to_tensor(list(moving_pattern(5, 70, 52)))
    keep = slice(1, 4)
    whole = Upscaler(model, 4, device="cpu", ensemble=ensemble).upscale_clip(clip, keep)
    tiled = Upscaler(model, 4, tile=24, tile_pad=40, device="cpu", ensemble=ensemble).upscale_clip(clip, keep)
    error = (tiled - whole).abs().max().item()
    print(f"recurrent tiled vs untiled, ensemble={ensemble}: max abs error {error:.2e}")
    assert tiled.shape == whole.shape == (3, 3, 52 * 4, 70 * 4)
    assert error < 1e-4


def test_chunked_matches_whole_clip_within_measured_tolerance():
    """Bidirectional propagation is cut at chunk borders; `overlap` context frames restore it.
    Tolerance stated for the default overlap=2: half an 8-bit level (1/510) on this tiny model.
    On the shipped model and real footage (carphone, bikes; 60 frames) overlap=2 with chunk=16
    moved mean PSNR-Y by at most 0.014 dB from one pass over the whole clip, max 2 levels."""
    model = tiny(TINY_RECURRENT)
    clip = to_tensor(list(moving_pattern(24, 32, 24)))
    whole = Upscaler(model, 4, chunk=24, device="cpu").upscale_clip(clip)
    errors = {}
    for overlap in (0, 2):
        upscaler = Upscaler(model, 4, chunk=8, overlap=overlap, device="cpu")
        errors[overlap] = (torch.cat(list(upscaler.stream_chunks(list(clip)))) - whole).abs().max().item()
    print(f"chunked (chunk=8) vs whole clip max abs error: overlap=0 {errors[0]:.2e}, overlap=2 {errors[2]:.2e}")
    assert errors[2] < 1 / 510
    assert errors[2] < errors[0] / 2  # the context frames are doing the work


def test_context_frames_are_propagated_but_not_reconstructed(monkeypatch):
    """A window's context frames only feed the recurrence: the model reconstructs the kept frames
    alone (and stops its forward pass after the last), with the outputs of a full run, through
    the Upscaler's windows, tiles and self-ensemble alike."""
    model = tiny(TINY_RECURRENT)
    clip = torch.rand(1, 7, 3, 20, 28)
    calls = []
    reconstruct = model.reconstruct
    monkeypatch.setattr(model, "reconstruct", lambda hidden, lr: calls.append(1) or reconstruct(hidden, lr))
    with torch.no_grad():
        full = model(clip)
        calls.clear()
        kept = run_tiled_recurrent(model, clip, slice(2, 5), 4)
        assert len(calls) == 3 and torch.equal(kept, full[:, 2:5])
        assert run_tiled_recurrent(model, clip, slice(3, 3), 4).shape == (1, 0, 3, 80, 112)
    frames = to_tensor(list(moving_pattern(14, 32, 24)))
    for options in ({}, {"tile": 16, "tile_pad": 8}, {"ensemble": 2}):
        one_pass = Upscaler(model, 4, chunk=14, device="cpu", **options).upscale_clip(frames)
        calls.clear()
        upscaler = Upscaler(model, 4, chunk=4, overlap=2, device="cpu", **options)
        chunked = torch.cat(list(upscaler.stream_chunks(list(frames))))
        runs = (1 if not options.get("tile") else 2 * 2) * options.get("ensemble", 1)  # tiles x flips
        assert len(calls) == 14 * runs < upscaler.computed_frames * runs
        assert (chunked - one_pass).abs().max().item() < 1 / 510, options


def test_chunk_auto_fills_the_onnx_clip_length(tmp_path):
    """chunk=auto: every call as long as the export's fixed-length ONNX graph (which then runs
    every chunk), or 20 frames without one."""
    model = tiny(TINY_RECURRENT)
    assert Upscaler(model, 4, device="cpu").chunk == 20 - 2 * 2
    meta = {"formats": {"onnx": {"file": "model.onnx", "input": {"shape": [1, 12, 3, "height", "width"]}}}}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    assert Upscaler(model, 4, device="cpu", folder=tmp_path, overlap=3).chunk == 12 - 2 * 3
    assert Upscaler(model, 4, temporal=False, device="cpu", folder=tmp_path).chunk == 12
    meta["formats"]["onnx_split"] = {"file": "model.propagate.onnx", "input": {"shape": [1, 10, 3, "height", "width"]}}
    (tmp_path / "model.json").write_text(json.dumps(meta))  # the split graphs are what the runtimes use
    assert Upscaler(model, 4, device="cpu", folder=tmp_path, overlap=3).chunk == 10 - 2 * 3


def test_single_frame_model_chunks_exactly():
    model = tiny(TINY_RRDB)
    clip = torch.rand(7, 3, 10, 12)
    whole = Upscaler(model, 2, temporal=False, device="cpu").upscale_clip(clip)
    chunked = torch.cat(list(Upscaler(model, 2, temporal=False, chunk=3, device="cpu").stream_chunks(list(clip))))
    assert (chunked - whole).abs().max() < 1e-6


def test_output_size_options():
    up = Upscaler(FrameIndexModel(), 2, device="cpu", outscale=3)
    assert up.output_size(64, 48) == (192, 144) and up.passes(64, 48) == 2
    assert up.upscale_clip(torch.rand(1, 3, 48, 64)).shape == (1, 3, 144, 192)
    fit = Upscaler(FrameIndexModel(), 2, device="cpu", fit="3840x2160")
    assert fit.output_size(1440, 1080) == (2880, 2160) and fit.passes(1440, 1080) == 1
    for name, box in (("4k", (3840, 2160)), ("1440P", (2560, 1440)), ("1080p", (1920, 1080))):
        assert Upscaler(FrameIndexModel(), 2, device="cpu", fit=name).output_size(1280, 720) == box
    filtered = Upscaler(FrameIndexModel(), 2, device="cpu", denoise=0.5, sharpen=0.5, color_match=True)
    out = filtered.upscale_clip(torch.rand(2, 3, 8, 8))
    assert out.shape == (2, 3, 16, 16) and 0 <= out.min() and out.max() <= 1
    model, clip = tiny(TINY_RRDB), torch.rand(1, 3, 8, 8)
    bf16 = Upscaler(model, 2, temporal=False, device="cpu", precision="bf16").upscale_clip(clip)
    assert (bf16 - Upscaler(model, 2, temporal=False, device="cpu").upscale_clip(clip)).abs().max() < 0.05
    for bad in ({"fit": "big"}, {"denoise": 2}, {"chunk": 0}, {"precision": "fp8"}, {"precision": "fp16"}, {"outscale": -1}):
        with pytest.raises(UserError):
            Upscaler(FrameIndexModel(), 2, device="cpu", **bad)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    export(tiny(TINY_RRDB), TINY_RRDB, folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", num_frames=12, width=64, height=48,
                            fps=25)


def audio_seconds(path) -> float:
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].sample_rate
        return sum(frame.samples for frame in container.decode(audio=0)) / rate


def upscale(**options) -> dict:
    return run({"progress": False, "chunk": 5, **options})


def test_video_keeps_frames_fps_and_audio(clip, exported, tmp_path):
    out = tmp_path / "out.mp4"
    summary = upscale(input=str(clip), output=str(out), weights=str(exported))
    info = probe(out)
    assert (info.width, info.height, info.num_frames, info.rate) == (128, 96, 12, Fraction(25))
    assert info.has_audio and summary["audio"] == "copied"
    assert abs(audio_seconds(out) - audio_seconds(clip)) <= 1024 / 44100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    assert summary["computed_frames"] == 12 and 0 < summary["model_seconds"] < summary["seconds"]


def test_scale_8_chains_passes_of_a_x2_model(clip, exported, tmp_path):
    upscale(input=str(clip), output=str(tmp_path / "x8.mp4"), weights=str(exported), scale=8)
    info = probe(tmp_path / "x8.mp4")
    assert (info.width, info.height, info.num_frames) == (512, 384, 12)
    for bad in ({"scale": 5}, {"scale": 8, "outscale": 4}):
        with pytest.raises(UserError, match="scale"):
            upscale(input=str(clip), output=str(tmp_path / "bad.mp4"), weights=str(exported), **bad)


def test_recurrent_model_video_with_tiles(clip, tmp_path):
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, tmp_path / "rec")
    out = tmp_path / "out.mkv"
    summary = upscale(input=str(clip), output=str(out), weights=str(tmp_path / "rec"), chunk=4, overlap=2, tile=40,
                      tile_pad=8)
    info = probe(out)
    assert (info.width, info.height, info.num_frames, info.rate, info.has_audio) == (256, 192, 12, 25, True)
    windows = plan_windows(12, 4, 2, fixed=True)  # the summary counts the context frames the model computed
    assert summary["computed_frames"] == sum(hi - lo for lo, _, _, hi in windows) > 12


def zero_frame_video(path: Path) -> Path:
    """An MKV whose video stream has no frames (only a short audio track)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=44100)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def bad_inputs(folder: Path, clip: Path) -> dict[str, tuple[dict, str]]:
    """name -> (options, expected words in the error)."""
    not_video = folder / "notes.mp4"
    not_video.write_text("hello\n" * 100)
    truncated = folder / "truncated.mp4"
    full = write_test_video(folder / "full.mp4", num_frames=30, faststart=True)
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    full.unlink()
    existing = folder / "existing.mp4"
    existing.write_bytes(b"keep me")
    return {
        "missing file": ({"input": str(folder / "nope.mp4")}, "file not found"),
        "not a video": ({"input": str(not_video)}, "not a readable video"),
        "truncated": ({"input": str(truncated)}, "truncated"),
        "zero frames": ({"input": str(zero_frame_video(folder / "empty.mkv"))}, "zero frames"),
        "output is input": ({"input": str(clip), "output": str(clip)}, "is the input file"),
        "existing output": ({"input": str(clip), "output": str(existing)}, "overwrite=true"),
        "no weights, no default": ({"input": str(clip), "weights": None}, "shipped default model is missing"),
        "ensemble not a symmetry count": ({"input": str(clip), "ensemble": 3}, "ensemble=3 must be auto or one of 1, 2, 4, 8"),
        "tile_pad not a number": ({"input": str(clip), "tile_pad": "abc"}, "tile_pad=abc must be an integer >= 0"),
        "tile true/false": ({"input": str(clip), "tile": True}, "tile=True must be an integer"),
        "chunk not a number": ({"input": str(clip), "chunk": "abc"}, "chunk=abc must be an integer >= 1 or auto"),
        "overlap not a number": ({"input": str(clip), "overlap": "abc"}, "overlap=abc must be an integer"),
        "denoise not a number": ({"input": str(clip), "denoise": "abc"}, "denoise=abc must be a number between 0 and 1"),
        "encoder_threads not a count": ({"input": str(clip), "encoder_threads": -1},
                                        "encoder_threads=-1 must be an integer between 0 and 64"),
    }


def test_bad_inputs_fail_cleanly(clip, exported, tmp_path, monkeypatch):
    import vsr.inference.video as job

    monkeypatch.setitem(job.SHIPPED, "default", tmp_path / "no-default-model")
    for name, (options, words) in bad_inputs(tmp_path, clip).items():
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(UserError, match=words) as err:
            upscale(**({"output": str(tmp_path / "out.mp4"), "weights": str(exported)} | options))
        assert "\n" not in str(err.value), name
        assert sorted(p.name for p in tmp_path.iterdir()) == before, f"{name}: left a file behind"


def test_interrupt_leaves_no_file(clip, exported, tmp_path, monkeypatch):
    import vsr.inference.video as job

    original = job.stream_frames

    def frames_then_ctrl_c(path, reader):
        for i, frame in enumerate(original(path, reader)):
            if i == 7:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(job, "stream_frames", frames_then_ctrl_c)
    with pytest.raises(SystemExit) as stop:
        upscale(input=str(clip), output=str(tmp_path / "out.mp4"), weights=str(exported))
    assert stop.value.code == 130
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_upscale_py_command(clip, exported, tmp_path):
    out = tmp_path / "out.mp4"
    ok = subprocess.run([sys.executable, "upscale.py", f"input={clip}", f"output={out}", f"weights={exported}",
                         "tile=32", "chunk=4"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "upscaled 12 frames 64x48 -> 128x96" in ok.stdout
    assert json.loads(ok.stdout.splitlines()[-1])["computed_frames"] >= 12  # the summary's JSON, as the README says
    assert "upscale: 100% 12/12 frames [" in ok.stderr and "\r" not in ok.stderr  # no terminal: a plain last line
    assert probe(out).num_frames == 12
    again = subprocess.run([sys.executable, "upscale.py", f"input={clip}", f"output={out}", f"weights={exported}"],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: output={out} already exists; pass overwrite=true to replace it"


def test_ensemble_is_applied_and_reported(clip, exported, tmp_path, capsys):
    from vsr.io.video import read_frames

    plain = upscale(input=str(clip), output=str(tmp_path / "plain.mp4"), weights=str(exported))
    x4 = upscale(input=str(clip), output=str(tmp_path / "x4.mp4"), weights=str(exported), ensemble=4)
    assert plain["ensemble"] == 1 and x4["ensemble"] == 4 and x4["frames"] == plain["frames"] == 12
    assert "ensemble x4" in capsys.readouterr().out
    # the tiny random model is not flip-symmetric: averaging its flipped runs changes the pixels
    a, b = read_frames(tmp_path / "plain.mp4").astype(int), read_frames(tmp_path / "x4.mp4").astype(int)
    assert a.shape == b.shape and abs(a - b).mean() > 0.5


# ---- every stream kept, or named ----------------------------------------------------------------

def multi_stream_video(folder: Path) -> Path:
    """An MKV with a video, two audio tracks (AAC, Opus) and an SRT subtitle track."""
    first = write_test_video(folder / "first.mkv", num_frames=12, audio_codec="aac")
    second = write_test_video(folder / "second.mkv", num_frames=12, audio_codec="libopus", sample_rate=48000)
    subtitles = folder / "subtitles.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:00,200\nhello\n\n2\n00:00:00,200 --> 00:00:00,480\nworld\n")
    path = folder / "multi.mkv"
    with av.open(str(first)) as a, av.open(str(second)) as b, av.open(str(subtitles)) as s, \
            av.open(str(path), "w") as out:
        streams = (a.streams.video[0], a.streams.audio[0], b.streams.audio[0], s.streams.subtitles[0])
        copies = {stream: out.add_stream_from_template(stream) for stream in streams}  # all before any packet
        for container in (a, b, s):
            for packet in container.demux([stream for stream in streams if stream.container is container]):
                if packet.size:  # not the demuxer's final empty packet
                    packet.stream = copies[packet.stream]
                    out.mux(packet)
    return path


def stream_codecs(path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(stream.type, stream.codec_context.name) for stream in container.streams]


def test_every_audio_and_subtitle_stream_is_copied_or_named(exported, tmp_path, capsys):
    source = multi_stream_video(tmp_path)
    assert stream_codecs(source) == [("video", "h264"), ("audio", "aac"), ("audio", "opus"), ("subtitle", "srt")]

    kept = upscale(input=str(source), output=str(tmp_path / "x.mkv"), weights=str(exported))
    assert stream_codecs(tmp_path / "x.mkv") == stream_codecs(source)
    assert kept["audio"] == "2 streams copied" and kept["dropped_streams"] == []
    assert "audio 2 streams copied, 1 subtitle stream copied," in capsys.readouterr().out

    # MP4 cannot hold SRT (PyAV cannot convert it to mov_text): said in one line, before any frame
    dropped = upscale(input=str(source), output=str(tmp_path / "x.mp4"), weights=str(exported))
    assert stream_codecs(tmp_path / "x.mp4") == stream_codecs(source)[:3]
    assert dropped["dropped_streams"] == ["subtitle stream #3 (srt): .mp4 files cannot hold it (.mkv can)"]
    out, err = capsys.readouterr()
    assert "warning: input=" in err and "subtitle stream #3 (srt): .mp4 files cannot hold it (.mkv can); it is " \
        "not in the output" in err
    assert "audio 2 streams copied, 1 stream dropped (subtitle stream #3 (srt)" in out


# ---- variable frame rate ------------------------------------------------------------------------

VFR_TIMES_MS = [0, 40, 80, 120, 300, 340, 380, 700, 740, 780, 820, 1160]  # pauses of 0.18-0.34 s


def variable_rate_video(path: Path, times_ms=VFR_TIMES_MS, seconds: float = 1.2) -> Path:
    """Frames at the given times (like a phone or screen recording) and a tone lasting `seconds`."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        sound = out.add_stream("aac", rate=44100)
        sound.layout = "mono"
        for t, pixels in zip(times_ms, moving_pattern(len(times_ms), 64, 48)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 44100)) / 44100) * 32767).astype(np.int16)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def frame_times(path) -> tuple[list[float], float]:
    """Each decoded frame's time in seconds, and one tick of the stream's time base."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [float(frame.pts * stream.time_base) for frame in container.decode(stream)], float(stream.time_base)


def audio_span(path) -> tuple[float, float]:
    """The first audio packet's time (the encoder's priming included) and the decoded audio's length, in
    seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        samples = sum(frame.samples for packet in packets for frame in packet.decode())
        return float(packets[0].pts * stream.time_base), samples / stream.sample_rate


def test_variable_frame_rate_keeps_every_frame_time_and_the_audio(exported, tmp_path):
    """Every output frame at its source time (within one tick of the coarser time base), against the
    audio, which is copied as it was. MKV stores no negative times: there the AAC priming packet
    before 0 shifts every stream alike, so times are compared from the audio's first packet."""
    source = variable_rate_video(tmp_path / "vfr.mp4")
    expected, source_tick = frame_times(source)
    assert max(abs(t - ms / 1000) for t, ms in zip(expected, VFR_TIMES_MS)) <= source_tick
    source_start, source_length = audio_span(source)
    for ext in (".mp4", ".mkv"):
        out = tmp_path / f"x{ext}"
        summary = upscale(input=str(source), output=str(out), weights=str(exported))
        times, tick = frame_times(out)
        start, length = audio_span(out)
        assert summary["frames"] == len(times) == len(expected)
        assert max(abs((a - start) - (b - source_start)) for a, b in zip(times, expected)) <= max(tick, source_tick)
        assert summary["variable_frame_rate"]
        assert abs(length - source_length) <= 1024 / 44100
        if ext == ".mp4":
            assert start == source_start and max(abs(a - b) for a, b in zip(times, expected)) <= max(tick, source_tick)


def test_shipped_preset_runs_its_smallest_factor_that_reaches_the_size(clip, exported, tmp_path, monkeypatch):
    import vsr.inference.video as job

    assert job.choose_factor({2: 0, 3: 0, 4: 0}, 1.9) == 2 and job.choose_factor({2: 0, 3: 0, 4: 0}, 2.5) == 3
    assert job.choose_factor({2: 0, 4: 0}, 6) == 4 and job.choose_factor({2: 0, 4: 0}, None) == 4
    monkeypatch.setitem(job.SHIPPED_FACTORS, "default", {2: exported, 3: tmp_path / "no-x3-here"})
    out = tmp_path / "fit.mp4"  # 64x48 into 128x96: x2 reaches it, so the x2 weights run
    summary = upscale(input=str(clip), output=str(out), fit="128x96", ensemble=1)
    assert summary["weights"] == str(exported) and summary["model_scale"] == 2
    assert (probe(out).width, probe(out).height) == (128, 96)
    summary = upscale(input=str(clip), output=str(tmp_path / "x3.mp4"), fit="192x144", ensemble=1, chunk=12)
    assert summary["model_scale"] == 4 and summary["weights"] == str(job.SHIPPED["default"])  # x3 absent: x4, shrunk
    assert (probe(tmp_path / "x3.mp4").width, probe(tmp_path / "x3.mp4").height) == (192, 144)


# ---- progress -----------------------------------------------------------------------------------

def test_a_window_advances_the_progress_frame_by_frame_before_it_comes_out():
    """A window's frames come out together when its model call ends; the bar counts them as the model
    finishes each (each flipped copy of ensemble=2 half a frame), so it never waits for a whole window."""
    from vsr.inference.progress import Progress

    frames = list(to_tensor(list(moving_pattern(12, 32, 24))))
    for ensemble, step in ((1, 1.0), (2, 0.5)):
        seen, out = [], []

        class Recorder(Progress):
            def advance(self, amount):
                super().advance(amount)
                seen.append((self.done, len(out)))

        upscaler = Upscaler(tiny(TINY_RECURRENT), 4, chunk=6, overlap=2, device="cpu", ensemble=ensemble)
        upscaler.report_to(Recorder(12, "upscale", enabled=False))
        for chunk in upscaler.stream_chunks(frames):
            out.extend(chunk)
        counts = [done for done, _ in seen]
        assert counts == [step * (i + 1) for i in range(int(12 / step))], ensemble
        first_window = [done for done, yielded in seen if yielded == 0]  # chunk 6 + overlap 2 kept first
        assert first_window == counts[: int(8 / step)], ensemble


def test_progress_says_the_runtime_timing_then_counts_frames_then_gives_an_eta(tmp_path, capsys, monkeypatch):
    """What a run prints on stderr when it is no terminal (a log): the runtime timing and its choice
    before any frame is counted, then frames one at a time, an ETA only once a window was timed
    after the timing, and no bar redraws; the summary's JSON last on stdout."""
    import re

    from vsr.inference import progress

    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0)  # a line at every change (else one every 30 s)
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, tmp_path / "rec")
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=14, width=128, height=96, audio=False)
    summary = run({"input": str(clip), "output": str(tmp_path / "out.mp4"), "weights": str(tmp_path / "rec"),
                   "chunk": 4, "overlap": 2})  # 8-frame windows of 128x96: large enough to time runtimes
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "\r" not in err
    timing = next(i for i, line in enumerate(lines) if line.startswith("timing runtimes for 128x96, 8 frames a call"))
    chosen = next(i for i, line in enumerate(lines) if line.startswith("runtime: "))
    bars = [i for i, line in enumerate(lines) if line.startswith("upscale: ")]
    assert timing < chosen < bars[0] and lines[chosen].startswith(f"runtime: {summary['runtime']}, frames/s at 128x96")
    counts = [int(re.search(r" (\d+)/14 frames \[", lines[i]).group(1)) for i in bars]
    assert counts[0] == 1 and counts[-1] == 14 and {b - a for a, b in zip(counts, counts[1:])} <= {0, 1}
    with_eta = [count for i, count in zip(bars, counts) if "ETA" in lines[i]]
    assert with_eta and min(with_eta) == 6  # the first window keeps chunk + overlap frames: timed when it ends
    assert json.loads(out.splitlines()[-1]) == summary and summary["model_seconds"] > 0
    assert summary["computed_frames"] > 14  # with the windows' context frames


def test_from_dir_uses_the_ensemble_upscale_py_uses_for_the_model(exported, monkeypatch):
    """ensemble=auto is decided in one place for a model folder: a shipped model measured flip-averaged
    (none is now; the default's x2 stands in) is flip-averaged from Python as on the command line (also
    when weights= names its folder); other folders are not."""
    import vsr.inference.shipped as shipped
    import vsr.inference.video as job
    from vsr.options import UpscaleOptions, options

    x2 = job.SHIPPED_FACTORS["default"][2]
    monkeypatch.setattr(shipped, "FLIP_AVERAGED", (x2,))
    assert Upscaler.from_dir(x2, device="cpu").ensemble.size == job.ensemble_size(options(UpscaleOptions, {"weights": str(x2)})) == 2
    assert Upscaler.from_dir(x2, device="cpu", ensemble=1).ensemble.size == 1
    default = job.SHIPPED["default"]
    assert Upscaler.from_dir(default, device="cpu").ensemble.size == job.ensemble_size(options(UpscaleOptions, {})) == 1
    assert Upscaler.from_dir(exported, device="cpu").ensemble.size == job.ensemble_size(options(UpscaleOptions, {"weights": str(exported)})) == 1


def video_folder(root: Path, clip: Path) -> Path:
    """input/: a video, a sub-folder with a WebM-named copy and an image, a broken video, a text file."""
    (root / "trip" / "day 2").mkdir(parents=True)
    (root / "trip" / "a.mp4").write_bytes(clip.read_bytes())
    (root / "trip" / "day 2" / "b.mov").write_bytes(clip.read_bytes())
    (root / "trip" / "day 2" / "still.png").write_bytes(
        __import__("cv2").imencode(".png", np.full((20, 30, 3), 128, np.uint8))[1].tobytes())
    (root / "trip" / "broken.mp4").write_bytes(b"not a video at all")
    (root / "trip" / "notes.txt").write_text("not an input")
    return root / "trip"


def test_a_folder_is_upscaled_file_by_file_and_a_rerun_redoes_only_what_is_missing(clip, exported, tmp_path, capsys):
    src, dst = video_folder(tmp_path, clip), tmp_path / "out"
    with pytest.raises(UserError, match="1 of 4 files failed"):
        upscale(input=str(src), output=str(dst), weights=str(exported))
    shown = capsys.readouterr().out
    summary = json.loads(shown.strip().splitlines()[-1])
    results = {r["file"]: r["result"] for r in summary["files"]}
    assert results["a.mp4"] == results["day 2/b.mov"] == results["day 2/still.png"] == "upscaled"
    assert results["broken.mp4"].startswith("failed: ") and "broken.mp4: not a readable video" in results["broken.mp4"]
    assert "| broken.mp4 |" in shown  # the table names it
    assert probe(dst / "a.mp4").num_frames == 12 and probe(dst / "day 2" / "b.mov").width == 128
    assert __import__("cv2").imread(str(dst / "day 2" / "still.png")).shape == (40, 60, 3)
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*")) == ["a.mp4", "day 2", "day 2/b.mov",
                                                                       "day 2/still.png"]  # nothing else, no partials

    (dst / "a.mp4").unlink()  # as if the run had been killed before a.mp4 was finished
    (src / "broken.mp4").unlink()
    stamp = (dst / "day 2" / "b.mov").stat().st_mtime_ns
    summary = upscale(input=str(src), output=str(dst), weights=str(exported))
    results = {r["file"]: r["result"] for r in summary["files"]}
    assert results == {"a.mp4": "upscaled", "day 2/b.mov": "done earlier", "day 2/still.png": "done earlier"}
    assert (dst / "day 2" / "b.mov").stat().st_mtime_ns == stamp and probe(dst / "a.mp4").num_frames == 12


@pytest.mark.parametrize("output, message", [
    ("same", "is the input folder"),
    ("file.mp4", "looks like a file name"),
    ("existing.txt", "is a file"),
])
def test_folder_jobs_refuse_outputs_that_are_not_another_folder(clip, tmp_path, output, message):
    src = video_folder(tmp_path, clip)
    (tmp_path / "existing.txt").write_text("x")
    target = src if output == "same" else tmp_path / output
    with pytest.raises(UserError, match=message):
        upscale(input=str(src), output=str(target))
    assert not (tmp_path / "file.mp4").exists()
