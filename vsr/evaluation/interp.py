"""evaluate.py for frame interpolators: each interior frame t of a clip is held out and predicted
from frames t-1 and t+1 (as if the clip were filmed at half its frame rate and interpolated back);
PSNR-Y / SSIM-Y / PSNR-RGB of the predictions against the real frames, per clip and mean, for the
model and the baselines (frame repetition, linear blend, classical DIS flow) side by side.

Frames whose two neighbours straddle a scene cut (`cut_score` above `interpolation.cut_threshold`)
are not scored for anyone (upscale.py holds a frame there instead of interpolating); the report
lists them.
"""

import logging
import time
from pathlib import Path

import torch

from vsr.errors import UserError, check_choice
from vsr.evaluation.reports import describe_data, write_json
from vsr.interpolation.baselines import BASELINES, build_baseline
from vsr.interpolation.stream import cut_score
from vsr.io.atomic import write_atomic
from vsr.metrics import psnr, ssim
from vsr.metrics.fidelity import crop
from vsr.options import EvaluateOptions, options

log = logging.getLogger(__name__)
KEYS = ("psnr_y", "ssim_y", "psnr_rgb")


def predict_middles(interpolator, clip: torch.Tensor, frames: list[int], batch: int, device) -> torch.Tensor:
    """Frames `frames` (indices t) of `clip` `(T, 3, H, W)` predicted from t-1 and t+1 at t = 0.5."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(frames), batch):
            idx = torch.tensor(frames[i:i + batch])
            pred = interpolator(clip[idx - 1].to(device), clip[idx + 1].to(device), 0.5)
            out.append(pred.float().clamp(0, 1).cpu())
    return torch.cat(out)


def score(pred: torch.Tensor, gt: torch.Tensor, border: int, batch: int = 4) -> dict[str, torch.Tensor]:
    """Per-frame metrics, `batch` frames at a time (SSIM works in float64: 720p clips at once need GBs)."""
    pred, gt = crop(pred, border), crop(gt, border)
    parts = [{"psnr_y": psnr(p, g, y_channel=True), "ssim_y": ssim(p, g, y_channel=True), "psnr_rgb": psnr(p, g)}
             for p, g in zip(pred.split(batch), gt.split(batch))]
    return {k: torch.cat([part[k] for part in parts]) for k in KEYS}


def mean(values: list[dict]) -> dict:
    return {k: (sum(v[k] for v in values) / len(values) if values else None) for k in KEYS}


def run_interpolation(cfg, main, out: Path, clips, device) -> float | None:
    """Score `main.model` (a frame interpolator) and the baselines on `clips`; write metrics.json,
    metrics.csv, frames.csv and report.md to `out`. Returns the model's mean PSNR-Y."""
    cfg = options(EvaluateOptions, cfg)
    settings = cfg.interpolation
    compare = list(settings.compare or [])
    for name in compare:
        check_choice("interpolation.compare", name, BASELINES)
    threshold, batch, border = settings.cut_threshold, settings.batch, int(cfg.metrics.crop_border)
    systems = {main.name: main.model.to(device).eval(), **{n: build_baseline(n) for n in dict.fromkeys(compare)}}
    results = {n: {} for n in systems}
    per_frame = {n: {} for n in systems}
    timing = {n: 0.0 for n in systems}
    held_out, excluded = {}, {}
    for index, item in enumerate(clips):
        hr = item["hr"][0] if item["hr"].ndim == 5 else item["hr"]
        name = str(item.get("name", f"clip{index:03d}"))
        hr = hr.float()
        if hr.shape[0] < 3:
            raise UserError(f"clip {name} has {hr.shape[0]} frames; interpolation needs at least 3 "
                            "(a frame between two neighbours)")
        frames, cuts = [], []
        for t in range(1, hr.shape[0] - 1):
            (cuts if cut_score(hr[t - 1], hr[t + 1]) > threshold else frames).append(t)
        if not frames:
            raise UserError(f"clip {name}: every frame sits at a scene cut; nothing to score")
        held_out[name], excluded[name] = frames, cuts
        log.info("clip %s: %d held-out frames (%d at scene cuts not scored), %dx%d", name, len(frames), len(cuts),
                 hr.shape[-1], hr.shape[-2])
        gt = hr[frames]
        for system, model in systems.items():
            start = time.perf_counter()
            pred = predict_middles(model, hr, frames, batch, device if system == main.name else "cpu")
            timing[system] += time.perf_counter() - start
            values = score(pred, gt, border)
            per_frame[system][name] = values
            results[system][name] = {k: float(v.mean()) for k, v in values.items()}
    report = {
        "task": "interpolation", "model": main.name, "source": main.source,
        "data": describe_data(cfg.data),
        "protocol": "each interior frame t predicted from frames t-1 and t+1 (t = 0.5); frames whose "
                    "neighbours straddle a scene cut are not scored",
        "mean": mean(list(results[main.name].values())), "clips": results[main.name],
        "baselines": {n: {"mean": mean(list(results[n].values())), "clips": results[n]} for n in systems
                      if n != main.name},
        "held_out_frames": held_out, "scene_cut_frames": excluded,
        "settings": {"crop_border": border, "cut_threshold": threshold},
        "performance": {"device": str(device), "seconds": timing},
    }
    write_json(out / "metrics.json", report)
    lines = ["system,clip," + ",".join(KEYS)]
    frame_lines = ["system,clip,frame," + ",".join(KEYS)]
    for system in systems:
        for clip, values in results[system].items():
            lines.append(f"{system},{clip}," + ",".join(f"{values[k]:.6g}" for k in KEYS))
            for j, t in enumerate(held_out[clip]):
                frame_lines.append(f"{system},{clip},{t}," + ",".join(f"{float(per_frame[system][clip][k][j]):.6g}"
                                                                     for k in KEYS))
        m = mean(list(results[system].values()))
        lines.append(f"{system},mean," + ",".join(f"{m[k]:.6g}" for k in KEYS))
    write_atomic(out / "metrics.csv", "\n".join(lines) + "\n")
    write_atomic(out / "frames.csv", "\n".join(frame_lines) + "\n")
    write_atomic(out / "report.md", markdown(report, systems))
    log.info("%s interpolation: PSNR-Y %.2f dB (blend %s) -> %s", main.name, report["mean"]["psnr_y"],
             f"{report['baselines']['blend']['mean']['psnr_y']:.2f}" if "blend" in report["baselines"] else "-",
             out / "report.md")
    return report["mean"]["psnr_y"]


def markdown(report: dict, systems: dict) -> str:
    rows = {report["model"]: report, **report["baselines"]}
    clips = list(report["clips"])
    lines = [f"# Frame interpolation: {report['model']}", "", f"- source: `{report['source']}`",
             f"- data: `{report['data']}`", f"- protocol: {report['protocol']}",
             f"- border crop: {report['settings']['crop_border']} px; scene-cut threshold "
             f"{report['settings']['cut_threshold']}", "",
             "## PSNR-Y (dB) / SSIM-Y per clip and mean", "",
             "| system | " + " | ".join(clips) + " | mean |", "|---|" + "---:|" * (len(clips) + 1)]
    for name, r in rows.items():
        cells = [f"{r['clips'][c]['psnr_y']:.2f} / {r['clips'][c]['ssim_y']:.4f}" for c in clips]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['mean']['psnr_y']:.2f} / {r['mean']['ssim_y']:.4f} |")
    lines += ["", "## Frames", ""]
    for clip in clips:
        held, cut = report["held_out_frames"][clip], report["scene_cut_frames"][clip]
        lines.append(f"- {clip}: {len(held)} held-out frames ({held[0]}..{held[-1]})"
                     + (f"; not scored (scene cut): {cut}" if cut else ""))
    lines += ["", "## Seconds", "", *[f"- {n}: {s:.2f}" for n, s in report["performance"]["seconds"].items()], ""]
    return "\n".join(lines)
