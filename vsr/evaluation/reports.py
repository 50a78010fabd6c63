"""Report writers: metrics.json (the contract), metrics.csv, frames.csv and report.md.

Every file is written under a temporary name and renamed when complete. PSNR of identical
frames is infinite and is written as JSON `Infinity` (Python's json reads it back as inf).
"""

import csv
import io
import json
from pathlib import Path

from vsr.evaluation.scoring import METRICS, PAIR_METRICS
from vsr.io.atomic import write_atomic

LABELS = {"psnr_y": "PSNR-Y ↑", "ssim_y": "SSIM-Y ↑", "psnr_rgb": "PSNR-RGB ↑", "lpips": "LPIPS ↓",
          "niqe": "NIQE ↓", "tof": "tOF ↓", "tlp": "tLP ↓", "warp_error": "warp error ↓"}
UNITS = ("PSNR in dB; SSIM in [0, 1]; LPIPS (AlexNet) in [0, 1]; NIQE as scikit-video computes it (no "
         "reference; lower = closer to natural photographs); tOF in pixels of flow (TecoGAN, "
         "papers print x10); tLP in LPIPS units (papers print x100); warp error in 8-bit levels "
         "(masked mean absolute difference of the flow-warped previous frame).")


def write_json(path: Path, report: dict) -> None:
    write_atomic(path, json.dumps(report, indent=2) + "\n")


def describe_data(data_cfg) -> str:
    """The data a run scored, as its reports name it: the clip dataset's class and its path or root,
    e.g. `VideoClips(clips/*.mp4)` (evaluate.py scores a datamodule config's `val` clips)."""
    if not data_cfg:
        return "unknown"
    clips = data_cfg.get("val") or data_cfg
    target = str(clips.get("_target_", "?")).rsplit(".", 1)[-1]
    path = data_cfg.get("path") or data_cfg.get("root")
    return f"{target}({path})" if path else target


def format_cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_metrics_csv(path: Path, report: dict) -> None:
    """One row per system and clip, plus a `mean` row per system."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["system", "clip", *METRICS])
    for system, result in systems(report).items():
        for clip, values in result["clips"].items():
            writer.writerow([system, clip, *(format_cell(values.get(k)) for k in METRICS)])
        writer.writerow([system, "mean", *(format_cell(result["mean"].get(k)) for k in METRICS)])
    write_atomic(path, buf.getvalue())


def write_frames_csv(path: Path, frames: dict) -> None:
    """Per-frame values: `frames[system][clip][metric]` lists; flicker of frame t is the pair (t-1, t)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["system", "clip", "frame", *METRICS])
    for system, clips in frames.items():
        for clip, values in clips.items():
            count = max((len(v) for v in values.values() if v is not None), default=0)
            for t in range(count):
                row = []
                for key in METRICS:
                    v = values.get(key)
                    i = t - 1 if key in PAIR_METRICS else t
                    row.append(format_cell(float(v[i])) if v is not None and 0 <= i < len(v) else "")
                writer.writerow([system, clip, t, *row])
    write_atomic(path, buf.getvalue())


def systems(report: dict) -> dict[str, dict]:
    """`{name: {"mean", "clips"}}` for the evaluated model first, then the baselines."""
    out = {report["model"]: {"mean": report["mean"], "clips": report["clips"]}}
    out.update(report.get("baselines", {}))
    return out


def format_value(value, key: str) -> str:
    if value is None:
        return "–"
    if value == float("inf"):
        return "∞"
    return f"{value:.4f}" if key in ("ssim_y", "lpips", "tlp") else f"{value:.2f}" if "psnr" in key else f"{value:.3f}"


def _table(rows: dict[str, dict]) -> list[str]:
    lines = ["| system | " + " | ".join(LABELS[k] for k in METRICS) + " |",
             "|---|" + "---:|" * len(METRICS)]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_value(values.get(k), k) for k in METRICS) + " |")
    return lines


def write_markdown(path: Path, report: dict, plots: dict[str, list[str]]) -> None:
    """report.md: mean and per-clip tables (model vs baselines), plots, speed, skipped metrics."""
    results = systems(report)
    lines = [f"# Evaluation: {report['model']} x{report['scale']}", "",
             f"- source: `{report['source']}`", f"- data: `{report['data']}` ({len(report['clips'])} clips)",
             f"- border crop: {report['settings']['crop_border']} px, flow: {report['settings']['flow']}, "
             f"device: {report['performance']['device']}", f"- units: {UNITS}", "",
             "## Mean over clips", "", *_table({n: r["mean"] for n, r in results.items()}), ""]
    truth = report.get("ground_truth_reference", {}).get("mean")
    if truth:
        lines += ["The GT frames themselves, for reference: " + ", ".join(
            f"{LABELS[k].rstrip(' ↑↓')} {format_value(v, k)}" for k, v in truth.items()), ""]
    if report.get("skipped"):
        lines += ["## Skipped metrics", ""] + [f"- `{k}`: {v}" for k, v in report["skipped"].items()] + [""]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- `{k}`: {v}" for k, v in report["notes"].items()] + [""]
    lines += ["## Per clip", ""]
    for clip in report["clips"]:
        rows = {n: r["clips"][clip] for n, r in results.items() if clip in r["clips"]}
        lines += [f"### {clip}", "", *_table(rows), ""]
        lines += [f"![{Path(p).stem}]({p})" for p in plots.get(clip, [])] + [""]
    perf = report["performance"]
    lines += ["## Speed and memory", "", "| system | frames | seconds | frames/s | peak GPU MiB |",
              "|---|---:|---:|---:|---:|"]
    for name, p in perf["systems"].items():
        gpu = "–" if p.get("peak_gpu_mib") is None else f"{p['peak_gpu_mib']:.0f}"
        lines.append(f"| {name} | {p['frames']} | {p['seconds']:.2f} | {p['fps']:.2f} | {gpu} |")
    lines += ["", f"Peak resident memory of the evaluation process: {perf['peak_rss_mib']:.0f} MiB "
              "(metrics and I/O included).", ""]
    write_atomic(path, "\n".join(lines))
