"""How many steps a timed run will reach, so that its cosine schedule ends when its time does.

Times one training item of `data=corpus` (synthesis + degradation) in this process and prints
`max_steps` for `--workers` loader processes over `--seconds`: workers / seconds-per-item x seconds
/ batch, times `--margin` (the loaders share the cores with the trainers), at most `--gpu-cap`
steps/s x seconds.

    python experiments/corpus/plan_steps.py --root .gpu_data/corpus --scale 4 --patch 256 --workers 6 --seconds 450
"""

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vsr.data.corpus import CorpusClips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--margin", type=float, default=0.8)
    parser.add_argument("--gpu-cap", type=float, default=15.0)
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a loader worker
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(str(conf), version_base=None):
        cfg = compose("train", overrides=["degradation=compressed", f"scale={args.scale}"])
    clips = CorpusClips(args.root, "train", args.scale, instantiate(cfg.degradation), num_frames=args.frames,
                        patch_size=args.patch, num_clips=1000)
    clips[0]
    start = time.perf_counter()
    for i in range(1, args.items + 1):
        clips[i]
    per_item = (time.perf_counter() - start) / args.items
    rate = min(args.workers / per_item / args.batch * args.margin, args.gpu_cap)
    print(int(rate * args.seconds), f"# {per_item * 1000:.0f} ms an item, {rate:.2f} steps/s planned")


if __name__ == "__main__":
    main()
