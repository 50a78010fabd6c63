"""`python evaluate.py ...`: score a model (and baselines) on full clips and write the reports."""

import logging
import resource
import time
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from vsr import SUPPORTED_SCALES
from vsr.errors import UserError, check_choice
from vsr.evaluation.baselines import BASELINES, Interpolation
from vsr.evaluation.loading import System, baseline, load_system
from vsr.evaluation.plots import plot_curves, plot_strip, safe_name
from vsr.evaluation.reports import (
    describe_data,
    format_value,
    write_frames_csv,
    write_json,
    write_markdown,
    write_metrics_csv,
)
from vsr.evaluation.scoring import METRICS, NO_REFERENCE, PAIR_METRICS, Scorer, clip_summary, mean_over_clips
from vsr.inference.memory import choose_tile
from vsr.inference.progress import Progress
from vsr.inference.shipped import auto_ensemble
from vsr.inference.upscaler import Upscaler, pick_device
from vsr.metrics.niqe import MIN_SIDE as NIQE_MIN_SIDE
from vsr.models.descriptor import describe
from vsr.options import EvaluateOptions, options
from vsr.work import part

log = logging.getLogger(__name__)
WHOLE_CLIP = 2**31 - 1  # inference.chunk=0: one window over the whole clip


def run(cfg: EvaluateOptions | DictConfig | dict, output_dir: str | Path | None = None) -> float | None:
    """Evaluate and write RUN/metrics.json, metrics.csv, frames.csv, report.md and plots/.

    `output_dir` defaults to Hydra's run directory. Returns the mean PSNR-Y of the model
    (the value a Hydra sweeper would optimise).
    """
    cfg = options(EvaluateOptions, cfg)
    out = Path(output_dir) if output_dir is not None else _hydra_output_dir()
    scale = int(cfg.scale)
    check_choice("scale", scale, SUPPORTED_SCALES)
    device = pick_device(cfg.device)
    main = load_system(cfg)
    if describe(main.model).task == "interpolation":  # a frame interpolator (model=interp)
        from vsr.evaluation.interp import run_interpolation

        return run_interpolation(cfg, main, out, _clips(_scored_data(cfg.data)), device)
    clips = _clip_set(_scored_data(cfg.data))
    upscalers = {main.name: _main_upscaler(main, scale, device, cfg)}
    compare = cfg.compare or []
    compare = [compare] if isinstance(compare, str) else list(compare)
    for mode in compare:
        check_choice("compare", mode, BASELINES)
    all_systems = [main] + [baseline(m, scale) for m in dict.fromkeys(compare) if m != main.name]
    for system in all_systems[1:]:
        upscalers[system.name] = Upscaler(system.model, scale, temporal=False, device=str(device), precision="fp32",
                                          runtime="eager")
    runner = upscalers[main.name].runtime

    metrics = cfg.metrics
    scorer = Scorer(crop_border=int(metrics.crop_border), lpips=metrics.lpips, lpips_backbone=metrics.lpips_backbone,
                    flicker=metrics.flicker, flow=metrics.flow, flow_weights=metrics.flow_weights,
                    lpips_batch=metrics.lpips_batch, device=device, niqe=metrics.niqe)
    ground_truth = cfg.ground_truth
    if not ground_truth:
        for key in (k for k in METRICS if k not in NO_REFERENCE):
            scorer.skipped.setdefault(key, "ground_truth=false: the clips are upscaled as they are, with no GT to compare")
    tile_auto = str(cfg.inference.tile) == "auto"

    summaries = {s.name: {} for s in all_systems}   # system -> clip -> metric -> value
    frames = {s.name: {} for s in all_systems}      # system -> clip -> metric -> per-frame tensor
    reference = {}                                  # clip -> NIQE and warp error of the GT frames themselves
    timing = {s.name: {"frames": 0, "seconds": 0.0, "peak_gpu_mib": None} for s in all_systems}
    plots: dict[str, list[str]] = {}
    progress = Progress(len(clips), "evaluate", unit="clip", enabled=cfg.progress)
    if progress.enabled:
        runner.notify = progress.step  # runtime timing on its own line above the bar (else logged)
    for index in range(len(clips)):
        lr, hr, name = _unpack(clips[index], index, scale)
        if not ground_truth:  # the decoded frames themselves are the input
            lr, hr = hr.float(), None
        log.info("clip %s: %d frames, LR %dx%d", name, lr.shape[0], lr.shape[-1], lr.shape[-2])
        middle = lr.shape[0] // 2
        strip = {"name": main.name}
        with progress.piece(1):  # the bar moves as each system finishes each frame of the clip
            for system in all_systems:
                upscaler = upscalers[system.name]
                if system is main and tile_auto:
                    upscaler.tile = 0
                    chosen = choose_tile(upscaler, lr.shape[-1], lr.shape[-2])
                    if chosen:
                        log.info(chosen)
                with part(1 / len(all_systems)):
                    sr = _timed_upscale(upscaler, lr, device, timing[system.name])
                expected = tuple(hr.shape[-2:]) if hr is not None else (lr.shape[-2] * scale, lr.shape[-1] * scale)
                if tuple(sr.shape[-2:]) != expected:
                    raise UserError(f"{system.name} made SR frames of {sr.shape[-1]}x{sr.shape[-2]} for clip {name}, "
                                    f"expected {expected[1]}x{expected[0]} (scale={scale})")
                values = scorer.score(sr, hr)
                frames[system.name][name] = values
                summaries[system.name][name] = clip_summary(values)
                if system is main:
                    strip["SR"] = sr[middle]
                    if cfg.report.save_frames:
                        _save_frames(out / "frames" / safe_name(name), sr)
        if hr is not None:
            reference[name] = {k: v for k, v in clip_summary(scorer.score(hr, None)).items() if k in NO_REFERENCE}
        if cfg.report.plots:
            plots[name] = _plot_clip(out, name, frames, lr, hr, strip, scale, cfg.report.strip_size)
    progress.close()

    main_mean = mean_over_clips(list(summaries[main.name].values()))
    for key in PAIR_METRICS:  # computed, but single-frame clips have no pair of frames to compare
        if main_mean[key] is None and key not in scorer.skipped:
            scorer.skipped[key] = "no clip has two frames (flicker compares consecutive frames)"
    if main_mean["niqe"] is None and "niqe" not in scorer.skipped:
        scorer.skipped["niqe"] = f"no SR frame is {NIQE_MIN_SIDE}x{NIQE_MIN_SIDE} pixels or more after the border crop"
    report = {
        "model": main.name, "source": main.source, "scale": scale, "data": describe_data(cfg.data),
        "mean": main_mean, "clips": summaries[main.name],
        "skipped": scorer.skipped, "notes": scorer.notes,
        "ground_truth_reference": {"mean": {k: v for k, v in mean_over_clips(list(reference.values())).items()
                                            if k in NO_REFERENCE and v is not None}, "clips": reference},
        "baselines": {s.name: {"mean": mean_over_clips(list(summaries[s.name].values())), "clips": summaries[s.name]}
                      for s in all_systems[1:]},
        "performance": {"device": str(device), "systems": {n: _rates(t) for n, t in timing.items()},
                        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "settings": {"crop_border": scorer.crop_border, "flow": scorer.flow, "chunk": upscalers[main.name].chunk,
                     "overlap": upscalers[main.name].overlap, "tile": upscalers[main.name].tile,
                     "precision": upscalers[main.name].precision,
                     "runtime": runner.name, "runtimes_dropped": runner.report()["dropped"],
                     "ensemble": upscalers[main.name].ensemble.size, "denoise": upscalers[main.name].denoise,
                     "sharpen": upscalers[main.name].sharpen,
                     "ground_truth": ground_truth,
                     "use_ema": cfg.use_ema},
    }
    write_json(out / "metrics.json", report)
    write_metrics_csv(out / "metrics.csv", report)
    write_frames_csv(out / "frames.csv", frames)
    write_markdown(out / "report.md", report, plots)
    mean = report["mean"]
    if not ground_truth:
        log.info("%s x%d, no GT: NIQE %s, warp error %s -> %s", main.name, scale, format_value(mean["niqe"], "niqe"),
                 format_value(mean["warp_error"], "warp_error"), out / "report.md")
        return None
    log.info("%s x%d: PSNR-Y %s dB, SSIM-Y %s -> %s", main.name, scale, format_value(mean["psnr_y"], "psnr_y"),
             format_value(mean["ssim_y"], "ssim_y"), out / "report.md")
    return mean["psnr_y"]


def _hydra_output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        raise UserError("no output directory: call run(cfg, output_dir=...) outside `python evaluate.py`")
    return Path(HydraConfig.get().runtime.output_dir)


def _scored_data(data_cfg):
    """Build only the clips evaluate.py scores, a datamodule config's `val` set: building its
    training set would refuse data for training-only limits (clips shorter than
    data.train.num_frames, a data.max_frames below it) that scoring never meets."""
    return hydra.utils.instantiate(data_cfg.val if "val" in data_cfg else data_cfg)


def _clips(data):
    """Clip dicts from a Dataset, or from a datamodule's test/validation set, in order."""
    dataset = _clip_set(data)
    for i in range(len(dataset)):
        yield dataset[i]


def _clip_set(data):
    """The Dataset of clip dicts: `data` itself, or a datamodule's test/validation set."""
    dataset = data
    for attr in ("test_set", "val_set"):
        if getattr(data, attr, None) is not None:
            dataset = getattr(data, attr)
            break
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise UserError(f"data builds a {type(data).__name__}, which holds no evaluation clips")
    if len(dataset) == 0:
        raise UserError("data has no clips to evaluate")
    return dataset


def _unpack(item: dict, index: int, scale: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    lr, hr = item["lr"], item["hr"]
    name = str(item.get("name", f"clip{index:03d}"))
    if lr.ndim == 5:  # a batch of one
        lr, hr = lr[0], hr[0]
    if lr.shape[0] == 0 or hr.shape[0] == 0:
        raise UserError(f"clip {name} is empty (0 frames)")
    if hr.shape[0] != lr.shape[0] or tuple(hr.shape[-2:]) != (lr.shape[-2] * scale, lr.shape[-1] * scale):
        raise UserError(f"clip {name}: GT is {hr.shape[0]} frames of {hr.shape[-1]}x{hr.shape[-2]} but LR is "
                        f"{lr.shape[0]} frames of {lr.shape[-1]}x{lr.shape[-2]}, not x{scale} of each other")
    return lr.float(), hr, name


def _main_upscaler(system: System, scale: int, device: torch.device, cfg: EvaluateOptions) -> Upscaler:
    """The `Upscaler` upscale.py would run the main model with (windows, padding, tiles, self-ensemble,
    runtime, precision), so the scores are those of the pipeline users run. An export folder's ONNX
    graphs and ensemble=auto setting come with it; `inference.*` sets the windows and tiles."""
    temporal = describe(system.model).temporal
    folder = system.source if Path(system.source).is_dir() else None
    ensemble = cfg.ensemble
    if ensemble == "auto":
        ensemble = auto_ensemble(folder) if folder else 1
    windows = cfg.inference
    return Upscaler(system.model, scale, temporal=temporal, chunk=WHOLE_CLIP if windows.chunk == 0 else windows.chunk,
                    overlap=windows.overlap, tile=0 if str(windows.tile) == "auto" else windows.tile,
                    tile_pad=windows.tile_pad, device=str(device), precision=cfg.precision, runtime=cfg.runtime,
                    folder=folder, ensemble=ensemble, denoise=cfg.denoise,  # "auto": the folder's setting
                    sharpen=cfg.sharpen)


def _timed_upscale(upscaler: Upscaler, lr: torch.Tensor, device: torch.device, timing: dict) -> torch.Tensor:
    """LR clip `(T, 3, h, w)` -> SR `(T, 3, H, W)` uint8, streamed through `upscaler` as upscale.py
    streams a video (the same windows) and rounded as its frames are."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    sr = torch.from_numpy(np.stack(list(upscaler.stream(list(lr))))).permute(0, 3, 1, 2)
    if cuda:
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        timing["peak_gpu_mib"] = max(timing["peak_gpu_mib"] or 0.0, peak)
    timing["seconds"] += time.perf_counter() - start
    timing["frames"] += lr.shape[0]
    return sr


def _rates(timing: dict) -> dict:
    return {**timing, "fps": timing["frames"] / timing["seconds"] if timing["seconds"] > 0 else 0.0}


def _plot_clip(out: Path, name: str, frames: dict, lr, hr, strip: dict, scale: int, size: int) -> list[str]:
    stem = safe_name(name)
    made = []
    fidelity = {"PSNR-Y (dB)": {s: f[name]["psnr_y"] for s, f in frames.items()}}
    if plot_curves(out / "plots" / f"{stem}_psnr.png", f"{name}: per-frame PSNR-Y", fidelity):
        made.append(f"plots/{stem}_psnr.png")
    if plot_curves(out / "plots" / f"{stem}_niqe.png", f"{name}: per-frame NIQE (lower = more natural)",
                   {"NIQE": {s: f[name]["niqe"] for s, f in frames.items()}}):
        made.append(f"plots/{stem}_niqe.png")
    flicker = {"warp error (levels)": {s: f[name]["warp_error"] for s, f in frames.items()},
               "tOF (px)": {s: f[name]["tof"] for s, f in frames.items()},
               "tLP": {s: f[name]["tlp"] for s, f in frames.items()}}
    if plot_curves(out / "plots" / f"{stem}_flicker.png", f"{name}: flicker per frame pair (t-1, t)", flicker, start=1):
        made.append(f"plots/{stem}_flicker.png")
    middle = lr.shape[0] // 2
    with torch.inference_mode():
        bicubic = Interpolation("bicubic", scale)(lr[None, middle:middle + 1])[0, 0]
    panels = {"LR": lr[middle], "bicubic": bicubic, f"SR ({strip['name']})": strip["SR"]}
    if hr is not None:
        panels["GT"] = hr[middle]
    plot_strip(out / "plots" / f"{stem}_strip.png", f"{name}, frame {middle}", panels, scale, size)
    made.append(f"plots/{stem}_strip.png")
    return made


def _save_frames(folder: Path, sr: torch.Tensor) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(sr.permute(0, 2, 3, 1).numpy()):
        tmp = folder / f"{t:05d}.tmp.png"
        cv2.imwrite(str(tmp), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        tmp.replace(folder / f"{t:05d}.png")
