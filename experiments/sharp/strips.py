"""Crops of the same frame side by side, one PNG strip per held-out clip: the clip's own frames (no GT)
upscaled x4 by bicubic, our exports and Real-ESRGAN's ncnn models, so a reader can look.

Each system runs on the first `--frames` frames of the same centre crop as heldout.py's `native`
condition (temporal models see their context); the strip shows a `--size` pixel square of the middle
frame's output, and the LR pixels it came from.

    python experiments/sharp/strips.py default=experiments/corpus/x4@2 sharp=experiments/sharp/x4 \\
        --peer realesr-animevideov3-x4 --out experiments/sharp/strips
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))
from heldout import conditions, load_clip, run_export, run_peer  # noqa: E402

from vsr.errors import one_line_errors  # noqa: E402
from vsr.evaluation.baselines import Interpolation  # noqa: E402
from vsr.evaluation.plots import plot_strip, safe_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="NAME=EXPORT_DIR[@ENSEMBLE]")
    parser.add_argument("--corpus", type=Path, default=ROOT / "datasets" / "corpus")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--native", default="320x240", help="WxH centre crop, as heldout.py --native")
    parser.add_argument("--size", type=int, default=192, help="output pixels of the square shown")
    parser.add_argument("--peer", action="append", default=[])
    parser.add_argument("--peer-python", default="/tmp/peer-venv/bin/python")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    native = tuple(int(v) for v in args.native.lower().split("x"))
    test = args.corpus / "videos" / "test"
    for clip in sorted(p for p in test.iterdir() if p.is_dir()):
        lr = conditions(load_clip(clip, args.frames), 28, native)["native"]
        middle = lr.shape[0] // 2
        panels = {"LR": lr[middle], "bicubic": Interpolation("bicubic", 4)(lr[None, middle:middle + 1])[0, 0]}
        for spec in args.models:
            label, folder = spec.split("=", 1)
            panels[label] = run_export(folder, lr)[middle]
        for model in args.peer:
            panels[model.replace("realesr-", "").replace("realesrgan-", "")] = \
                run_peer(model, lr, args.peer_python, args.threads)[middle]
        path = args.out / f"{safe_name(clip.name)}.png"
        plot_strip(path, f"{clip.name}, frame {middle}, x4 of the footage as it is", panels, 4, args.size)
        print(path, flush=True)


if __name__ == "__main__":
    sys.exit(main())
