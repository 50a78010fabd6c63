"""evaluate.py: video clips, chunked inference, baselines, checkpoints, reports, sweeps and bad input."""

import csv
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from skimage import data as skdata

import vsr.conf  # noqa: F401  (registers the options the configs compose onto)
from vsr.data.video import VideoClips
from vsr.errors import UserError
from vsr.evaluation import run
from vsr.evaluation.baselines import Interpolation
from vsr.evaluation.collect import main as collect_main
from vsr.evaluation.loading import System
from vsr.evaluation.runner import _main_upscaler, _timed_upscale, _unpack
from vsr.models import RecurrentRRDBNet, RRDBNet
from vsr.options import EvaluateOptions, options

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_KEYS = {"psnr_y", "ssim_y", "psnr_rgb", "lpips", "niqe", "tof", "tlp", "warp_error"}
TINY = {"_target_": "vsr.models.RecurrentRRDBNet", "num_feat": 8, "num_block": 1, "num_block_prop": 1,
        "num_grow_ch": 4, "alignment": "flow", "flow_levels": 2, "flow_channels": [8, 4], "upsampler": "pixelshuffle"}


def write_video(path: Path, frames: int = 8, width: int = 64, height: int = 48) -> Path:
    """A small H.264 file: a window panning over a photo by (2, 1) pixels per frame."""
    photo = skdata.astronaut()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "10"}
        for t in range(frames):
            crop = np.ascontiguousarray(photo[120 + t:120 + t + height, 180 + 2 * t:180 + 2 * t + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def save_checkpoint(path: Path, config: dict, model: torch.nn.Module | None = None) -> Path:
    """A checkpoint shaped like training's: EMA weights under generator_ema.module.*, generator_config."""
    if model is None:
        torch.manual_seed(0)
        model = RecurrentRRDBNet(**{k: v for k, v in config.items() if k != "_target_"})
    state = {f"generator_ema.module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"generator_config": config}, "global_step": 0}, path)
    return path


def evaluate_in_process(out: Path, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=overrides)
    run(cfg, output_dir=out)
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "pan.mp4")


@pytest.fixture(scope="module")
def x4_checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "x4.ckpt", {**TINY, "scale": 4})


# --- pieces ----------------------------------------------------------------------------------

def upscaler_for(model, **cfg):
    config = options(EvaluateOptions, {"inference": {"tile": 0}, "runtime": "eager", **cfg})
    return _main_upscaler(System("m", model, "memory"), 2, torch.device("cpu"), config)


def test_windowed_scoring_equals_one_pass_for_a_per_frame_model():
    torch.manual_seed(0)
    model = RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4).eval()
    lr = torch.rand(7, 3, 10, 12)
    timing = {"frames": 0, "seconds": 0.0, "peak_gpu_mib": None}
    whole = _timed_upscale(upscaler_for(model, inference={"chunk": 0, "tile": 0}), lr, torch.device("cpu"), timing)
    assert whole.shape == (7, 3, 20, 24) and whole.dtype == torch.uint8 and timing["frames"] == 7
    windows = upscaler_for(model, inference={"chunk": 3, "overlap": 1, "tile": 0})
    assert torch.equal(_timed_upscale(windows, lr, torch.device("cpu"), timing), whole)
    recurrent = RecurrentRRDBNet(scale=2, **{k: v for k, v in TINY.items() if k not in ("_target_",)}).eval()
    out = _timed_upscale(upscaler_for(recurrent, inference={"chunk": 2, "overlap": 2}), lr, torch.device("cpu"), timing)
    assert out.shape == (7, 3, 20, 24)


def test_video_clips_read_crop_and_degrade(video, tmp_path):
    clips = VideoClips(str(video), scale=4, max_frames=5, crop=[42, 62])
    item = clips[0]
    assert item["name"] == "pan"
    assert item["hr"].shape == (5, 3, 40, 60)  # centre crop, then cut to a multiple of the scale
    assert item["lr"].shape == (5, 3, 10, 15)
    assert 0 <= item["lr"].min() and item["lr"].max() <= 1
    write_video(tmp_path / "b.mp4", frames=3)
    write_video(tmp_path / "a.mp4", frames=3)
    assert [c["name"] for c in VideoClips(str(tmp_path / "*.mp4"), scale=2)] == ["a", "b"]
    with pytest.raises(UserError, match="matches no video file"):
        VideoClips(str(tmp_path / "*.mkv"))
    with pytest.raises(UserError, match="video file not found"):
        VideoClips(str(tmp_path / "missing.mp4"))
    with pytest.raises(UserError, match="data.path is required"):
        VideoClips(None)


@pytest.mark.parametrize("mode", ["bicubic", "lanczos", "nearest"])
def test_baselines_upscale_and_keep_flat_frames_flat(mode):
    flat = torch.full((1, 2, 3, 6, 5), 0.25)
    up = Interpolation(mode, scale=3)(flat)
    assert up.shape == (1, 2, 3, 18, 15)
    assert torch.allclose(up, torch.full_like(up, 0.25), atol=1e-5)
    assert 0 <= Interpolation(mode, scale=2)(torch.rand(1, 2, 3, 8, 8)).min()


# --- runs ------------------------------------------------------------------------------------

def test_checkpoint_run_writes_every_report_with_baselines_side_by_side(video, x4_checkpoint, tmp_path):
    out = tmp_path / "run"
    metrics = evaluate_in_process(out, [f"checkpoint={x4_checkpoint}", f"data.path={video}", "scale=4",
                                        "compare=[bicubic,nearest]", "metrics.lpips=random", "inference.chunk=3",
                                        "report.save_frames=true"])
    assert metrics["model"] == "RecurrentRRDBNet" and metrics["scale"] == 4
    assert set(metrics["mean"]) == CONTRACT_KEYS and set(metrics["clips"]["pan"]) == CONTRACT_KEYS
    assert all(v is not None for k, v in metrics["mean"].items() if k != "niqe")
    assert metrics["mean"]["niqe"] is None and "194x194" in metrics["skipped"]["niqe"]  # 248x184 after the crop
    assert "NOT LPIPS" in metrics["notes"]["lpips"]  # a random backbone is never silent
    baselines = metrics["baselines"]
    assert set(baselines) == {"bicubic", "nearest"}
    assert baselines["nearest"]["mean"]["psnr_y"] < baselines["bicubic"]["mean"]["psnr_y"]
    assert baselines["nearest"]["mean"]["warp_error"] > baselines["bicubic"]["mean"]["warp_error"]
    assert metrics["performance"]["systems"]["RecurrentRRDBNet"]["frames"] == 8
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["system"], r["clip"]) for r in rows][:2] == [("RecurrentRRDBNet", "pan"), ("RecurrentRRDBNet", "mean")]
    assert len(rows) == 6
    with open(out / "frames.csv") as f:
        frames = list(csv.DictReader(f))
    assert len(frames) == 3 * 8 and frames[0]["tof"] == "" and frames[1]["tof"] != ""
    report = (out / "report.md").read_text()
    assert "RecurrentRRDBNet" in report and "| bicubic |" in report and "frames/s" in report
    for plot in ("pan_psnr.png", "pan_flicker.png", "pan_strip.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
    assert len(list((out / "frames" / "pan").glob("*.png"))) == 8
    assert not list(out.rglob("*.tmp*"))


def test_exported_model_directory_is_read_through_vsr_inference(video, tmp_path, monkeypatch):
    export = tmp_path / "export"
    export.mkdir()
    loaded = []

    def fake_load(path):  # vsr.inference is another helper's; only the hand-off is tested here
        loaded.append(Path(path))
        return Interpolation("bicubic", 2), {"scale": 2}

    monkeypatch.setitem(sys.modules, "vsr.inference", types.SimpleNamespace(load=fake_load))
    metrics = evaluate_in_process(tmp_path / "run", [f"checkpoint={export}", f"data.path={video}", "scale=2",
                                                     "compare=[]", "metrics.flicker=false", "report.plots=false"])
    assert loaded == [export] and metrics["baselines"] == {}
    assert metrics["mean"]["tof"] is None and metrics["skipped"]["tof"] == "metrics.flicker=false"


def test_single_frame_clips_report_flicker_as_skipped_with_the_reason(video, tmp_path):
    metrics = evaluate_in_process(tmp_path, ["model=lanczos", f"data.path={video}", "data.max_frames=1", "scale=2",
                                             "compare=[]", "report.plots=false"])
    assert metrics["model"] == "lanczos" and metrics["mean"]["psnr_y"] > 25
    assert metrics["mean"]["tof"] is None and "two frames" in metrics["skipped"]["warp_error"]


@pytest.mark.parametrize("shown", [True, False])
def test_progress_counts_clips_on_stderr_unless_turned_off(video, tmp_path, capsys, monkeypatch, shown):
    import vsr.inference.progress as progress

    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)  # a line at every step, as a log file gets every 30 s
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(video.read_bytes())
    evaluate_in_process(tmp_path / "run", ["model=bicubic", f"data.path={tmp_path}/*.mp4", "data.max_frames=3",
                                           "report.plots=false", f"progress={str(shown).lower()}"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evaluate: ")]
    if not shown:
        assert lines == []
        return
    assert lines[-1].startswith("evaluate: 100% 2/2 clips")
    counts = [line.split()[2] for line in lines]
    assert "1/2" in counts and counts == sorted(counts)  # after the first clip, before the second


@pytest.mark.parametrize("overrides, message", [
    (["checkpoint={missing}"], r"checkpoint=.*missing.ckpt: not found"),
    (["checkpoint={glob}"], r"must match exactly one checkpoint; it matches 2 paths"),
    (["checkpoint={x4}", "scale=2"], r"is a x4 model but scale=2 was asked"),
    (["checkpoint={x4}", "model=rrdb"], r"holds a vsr.models.RecurrentRRDBNet but model asks for vsr.models.RRDBNet"),
    (["checkpoint={x4}", "model=recurrent_rrdb"], r"num_feat=8 \(model.num_feat=32\)"),
    (["checkpoint={bad}"], r"weights do not fit its own architecture"),
    (["checkpoint={x4}", "model=bicubic"], r"either checkpoint=... or model=bicubic"),
    ([], r"nothing to evaluate"),
    (["model=rrdb"], r"has no weights"),
    (["model=bicubic", "compare=[cubic]"], r"compare=cubic is not supported"),
])
def test_bad_input_is_one_clear_line(video, x4_checkpoint, tmp_path, overrides, message):
    bad = save_checkpoint(tmp_path / "bad.ckpt", {**TINY, "scale": 4, "num_feat": 16},
                          model=RecurrentRRDBNet(**{k: v for k, v in TINY.items() if k != "_target_"}))
    paths = {"missing": tmp_path / "missing.ckpt", "x4": x4_checkpoint, "bad": bad, "glob": tmp_path / "*.ckpt"}
    save_checkpoint(tmp_path / "other.ckpt", {**TINY, "scale": 4})
    with pytest.raises(UserError, match=message) as err:
        evaluate_in_process(tmp_path / "run", [o.format(**paths) for o in overrides] + [f"data.path={video}"])
    assert "\n" not in str(err.value)


def test_clips_whose_gt_and_lr_do_not_match_or_are_empty_are_refused():
    lr = torch.rand(3, 3, 8, 8)
    with pytest.raises(UserError, match=r"GT is 3 frames of 30x32 but LR is 3 frames of 8x8, not x4"):
        _unpack({"lr": lr, "hr": torch.rand(3, 3, 32, 30), "name": "c"}, 0, 4)
    with pytest.raises(UserError, match="clip c is empty"):
        _unpack({"lr": lr[:0], "hr": torch.rand(0, 3, 32, 32), "name": "c"}, 0, 4)


# --- the real entry point --------------------------------------------------------------------

def evaluate_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)  # one OpenMP thread: see conftest.py
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_contract_command_for_a_baseline(video, tmp_path):
    result = evaluate_cli("model=bicubic", "data=video", f"data.path={video}", "scale=4", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["mean"]) == CONTRACT_KEYS and set(metrics["clips"]) == {"pan"}
    assert metrics["mean"]["psnr_y"] > 20 and metrics["mean"]["lpips"] is None or metrics["mean"]["lpips"] >= 0
    if metrics["mean"]["lpips"] is None:  # no AlexNet weights on this machine: said so, not a random number
        assert "alexnet" in metrics["skipped"]["lpips"].lower()
    for name in ("metrics.csv", "report.md", "frames.csv", "plots/pan_strip.png"):
        assert (tmp_path / name).is_file()


@pytest.mark.slow
def test_an_exported_model_scores_like_its_checkpoint(video, x4_checkpoint, tmp_path):
    export = subprocess.run([sys.executable, str(ROOT / "export.py"), f"checkpoint={x4_checkpoint}",
                             f"output_dir={tmp_path / 'export'}", f"hydra.run.dir={tmp_path / 'export_run'}"],
                            cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                            timeout=180)
    assert export.returncode == 0, export.stderr
    common = [f"data.path={video}", "scale=4", "compare=[]", "report.plots=false"]
    from_dir = evaluate_in_process(tmp_path / "a", [f"checkpoint={tmp_path / 'export'}", *common])
    from_ckpt = evaluate_in_process(tmp_path / "b", [f"checkpoint={x4_checkpoint}", *common])
    assert from_dir["model"] == "RecurrentRRDBNet" and from_dir["source"] == str(tmp_path / "export")
    assert from_dir["mean"] == from_ckpt["mean"]


@pytest.mark.slow
def test_contract_command_with_a_missing_checkpoint_exits_2_with_one_line(video, tmp_path):
    result = evaluate_cli(f"checkpoint={tmp_path}/nope.ckpt", f"data.path={video}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: checkpoint={tmp_path}/nope.ckpt: not found "
        "(training writes RUN/checkpoints/last.ckpt; export writes a directory)"]


def train_a_few_steps(video: Path, scale: int, steps: int = 3) -> torch.nn.Module:
    """A tiny recurrent generator after a few Adam steps of L1 on the test clip."""
    torch.manual_seed(scale)
    model = RecurrentRRDBNet(scale=scale, **{k: v for k, v in TINY.items() if k != "_target_"})
    item = VideoClips(str(video), scale=scale, max_frames=4)[0]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = (model(item["lr"][None]) - item["hr"][None]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.slow
def test_scale_sweep_is_collected_into_one_table(video, tmp_path):
    trained = tmp_path / "train_sweep"  # laid out like `train.py -m scale=2,4` writes it
    for num, scale in enumerate((2, 4)):
        (trained / f"{num}_scale{scale}" / "checkpoints").mkdir(parents=True)
        save_checkpoint(trained / f"{num}_scale{scale}" / "checkpoints" / "last.ckpt", {**TINY, "scale": scale},
                        train_a_few_steps(video, scale))
    sweep = tmp_path / "sweep"
    checkpoint = f"checkpoint={trained}/*_scale${{scale}}/checkpoints/last.ckpt"
    result = evaluate_cli("-m", "scale=2,4", checkpoint, f"data.path={video}",
                          "data.max_frames=4", "report.plots=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    with open(sweep / "summary.csv") as f:  # written by the sweep's own callback
        rows = list(csv.DictReader(f))
    assert [(r["scale"], r["system"], r["role"]) for r in rows] == [
        ("2", "RecurrentRRDBNet", "model"), ("2", "bicubic", "baseline"),
        ("4", "RecurrentRRDBNet", "model"), ("4", "bicubic", "baseline")]
    psnr = {(r["scale"], r["system"]): float(r["psnr_y"]) for r in rows}
    assert psnr[("2", "bicubic")] > psnr[("4", "bicubic")]  # x4 is harder than x2
    # The collect command makes the same table from run directories, wherever they are.
    collect_main([str(sweep / "0_scale2"), str(sweep / "1_scale4"), "--output", str(tmp_path)])
    assert (tmp_path / "summary.csv").read_text() == (sweep / "summary.csv").read_text()
    assert f"| x4 | `VideoClips({video})` | **RecurrentRRDBNet** |" in (tmp_path / "summary.md").read_text()


def test_collect_names_the_data_each_run_scored(video, tmp_path):
    other = write_video(tmp_path / "other.mp4", frames=4)
    # data.max_frames=3 and the 4-frame clip are below data.train.num_frames=7: scored all the same
    common = ["model=bicubic", "compare=[]", "scale=4", "data.max_frames=3", "report.plots=false", "metrics.flicker=false",
              "metrics.lpips=off"]
    evaluate_in_process(tmp_path / "pan", [f"data.path={video}", *common])
    evaluate_in_process(tmp_path / "other", [f"data.path={other}", *common])
    # a run whose metrics.json does not name its data: read from the config Hydra saved beside it
    metrics = tmp_path / "other" / "metrics.json"
    metrics.write_text(json.dumps({k: v for k, v in json.loads(metrics.read_text()).items() if k != "data"}))
    (tmp_path / "other" / ".hydra").mkdir()
    (tmp_path / "other" / ".hydra" / "config.yaml").write_text(
        f"data:\n  path: {other}\n  val:\n    _target_: vsr.data.video.VideoClips\n")
    collect_main([str(tmp_path / "pan"), str(tmp_path / "other"), "--output", str(tmp_path)])
    with open(tmp_path / "summary.csv") as f:
        assert [(r["data"], r["system"]) for r in csv.DictReader(f)] == [
            (f"VideoClips({other})", "bicubic"), (f"VideoClips({video})", "bicubic")]
    summary = (tmp_path / "summary.md").read_text()
    assert f"| x4 | `VideoClips({video})` | **bicubic** |" in summary and f"`VideoClips({other})`" in summary


def test_evaluate_runs_the_model_on_the_chosen_runtime(video, tmp_path, monkeypatch):
    """runtime= (auto by default, as upscale.py) runs the main model: here ONNX Runtime on a
    single-frame RRDB exported on the fly; the scores equal the eager run's."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    config = {"_target_": "vsr.models.RRDBNet", "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    torch.manual_seed(0)
    model = RRDBNet(**{k: v for k, v in config.items() if k != "_target_"})
    checkpoint = save_checkpoint(tmp_path / "rrdb.ckpt", config, model)
    common = [f"checkpoint={checkpoint}", f"data.path={video}", "scale=4", "compare=[]", "report.plots=false",
              "metrics.flicker=false", "metrics.lpips=off"]
    onnx = evaluate_in_process(tmp_path / "onnx", [*common, "runtime=onnxruntime"])
    eager = evaluate_in_process(tmp_path / "eager", [*common, "runtime=eager"])
    assert onnx["settings"]["runtime"] == "onnxruntime", onnx["settings"]["runtimes_dropped"]
    assert eager["settings"]["runtime"] == "eager"
    assert abs(onnx["mean"]["psnr_y"] - eager["mean"]["psnr_y"]) < 1e-3


def test_evaluate_scores_the_self_ensemble_when_asked(video, tmp_path):
    """ensemble=8 averages the model over the 8 flips/transposes (as upscale.py does): recorded in
    metrics.json, and a different score from the plain model's (a random net is not symmetric)."""
    config = {"_target_": "vsr.models.RRDBNet", "scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4}
    torch.manual_seed(0)
    model = RRDBNet(**{k: v for k, v in config.items() if k != "_target_"})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    checkpoint = save_checkpoint(tmp_path / "rrdb.ckpt", config, model)
    common = [f"checkpoint={checkpoint}", f"data.path={video}", "scale=4", "compare=[]", "report.plots=false",
              "metrics.flicker=false", "metrics.lpips=off", "runtime=eager"]
    plain = evaluate_in_process(tmp_path / "plain", common)
    x8 = evaluate_in_process(tmp_path / "x8", [*common, "ensemble=8"])
    assert plain["settings"]["ensemble"] == 1 and x8["settings"]["ensemble"] == 8
    assert abs(x8["mean"]["psnr_y"] - plain["mean"]["psnr_y"]) > 1e-3
