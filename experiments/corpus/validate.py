"""Score exports on the corpus's *validation* split, where settings are chosen (never on the held-out clips).

    python experiments/corpus/validate.py default=vsr/weights/default/x4@1 denoised=vsr/weights/default/x4@1,denoise=0.5 \
        --degradation compressed [--frames 12 --patch 384]

The clips are `data=corpus`'s val split (the plasma-workspace photographs filmed by its camera paths
and moving layers), LR made by `--degradation` (compressed | bicubic | realistic), larger than
training's validation (`--patch` HR pixels, `--frames` frames) so that flow-based settings see motion.
Each system runs as heldout.py runs it (`NAME=DIR[@ENSEMBLE][,OPTION=X...]`, upscale.py's pipeline);
prints PSNR-Y (BasicSR's conventions) and tOF per clip, and the means of those, NIQE and the
warp error of the output alone beside bicubic.
"""

import argparse
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout  # noqa: E402  (experiments/corpus is not a package)
from heldout import ROOT, run_export, score  # noqa: E402

import vsr.conf  # noqa: E402,F401  (registers the options the configs compose onto)
from vsr.evaluation.baselines import Interpolation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="NAME=EXPORT_DIR[@ENSEMBLE][,denoise=X][,sharpen=X]")
    parser.add_argument("--degradation", default="compressed")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--patch", type=int, default=384, help="HR size of each clip")
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    heldout.SCALE = args.scale  # run_export's outscale and score's border crop
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=[
            "data=corpus", f"scale={args.scale}", f"degradation={args.degradation}", f"data.val.patch_size={args.patch}",
            f"data.val.num_frames={args.frames}"])
    clips = instantiate(cfg.data.val)
    systems = dict(spec.split("=", 1) for spec in args.models)
    totals: dict[str, list[dict]] = {name: [] for name in ["bicubic", *systems]}
    for index in range(len(clips)):
        item = clips[index]
        lr, hr = item["lr"].float(), item["hr"].float()
        with torch.no_grad():
            outputs = {"bicubic": Interpolation("bicubic", args.scale)(lr[None])[0]}
        outputs |= {name: run_export(spec, lr) for name, spec in systems.items()}
        for name, sr in outputs.items():
            totals[name].append(score(sr, hr, warp=True))
        print(f"clip {index}: " + "  ".join(f"{name} {s[-1]['psnr_y']:.3f} / {s[-1]['tof']:.3f}"
                                           for name, s in totals.items()), flush=True)
    print(f"mean over {len(clips)} val clips, {args.degradation} LR (PSNR-Y (gain) / tOF / NIQE / warp error):")
    mean = {name: {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]} for name, scores in totals.items()}
    for name, m in mean.items():
        print(f"  {name:20s} {m['psnr_y']:.3f} ({m['psnr_y'] - mean['bicubic']['psnr_y']:+.3f}) / {m['tof']:.3f} / "
              f"{m['niqe']:.2f} / {m['warp_error']:.3f}")


if __name__ == "__main__":
    main()
