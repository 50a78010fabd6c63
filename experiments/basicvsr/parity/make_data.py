"""A small REDS-layout dataset that BasicSR's trainer and vsrlab's read identically (issue 28, trainer parity).

HR clips from the offline corpus (datasets/prepare.py corpus): training photos filmed along camera paths
with moving layers (vsrlab's `data=corpus` renderer, fixed seeds) and 100-frame windows of the corpus's
training clips; validation clips from the validation photos only. LR is made once, stored, by
`datasets/prepare.py lr` (MATLAB bicubic), so both trainers read the same PNG pairs.

    .venv/bin/python experiments/basicvsr/parity/make_data.py datasets/corpus datasets/parity

Writes ROOT/train_sharp/NNN/%08d.png (REDS4 names 000/011/015/020 are the validation clips),
ROOT/train_sharp_bicubic/X4/..., and BasicSR's meta-info files ROOT/meta_info_train.txt / meta_info_val.txt.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from vsr.data.corpus import CorpusClips, find_video_clips
from vsr.data.frames import read_image

VAL = ["000", "011", "015", "020"]
TRAIN_FRAMES, VAL_FRAMES, SIZE = 100, 20, 320


def write_clip(folder: Path, frames: torch.Tensor) -> None:
    """`frames` (T, 3, H, W) float in [0, 1] as RGB PNGs named like REDS's."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        rgb = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        cv2.imwrite(str(folder / f"{i:08d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def video_windows(corpus: Path, count: int) -> list[torch.Tensor]:
    """`count` 100-frame windows, centre-cropped to SIZE, spread over the training clips large enough."""
    clips = [c for c in find_video_clips(corpus, "train") if len(c.hr) >= TRAIN_FRAMES
             and min(read_image(c.hr[0]).shape[:2]) >= SIZE]
    if not clips:
        sys.exit(f"{corpus}/videos/train: no clip of {TRAIN_FRAMES} frames and {SIZE} px; rebuild the corpus")
    windows = []
    for k in range(count):
        clip = clips[k % len(clips)]
        starts = np.linspace(0, len(clip.hr) - TRAIN_FRAMES, count // len(clips) + 1).astype(int)
        start = starts[k // len(clips)]
        frames = []
        for path in clip.hr[start:start + TRAIN_FRAMES]:
            image = read_image(path)
            top, left = (image.shape[0] - SIZE) // 2, (image.shape[1] - SIZE) // 2
            frames.append(torch.from_numpy(image[top:top + SIZE, left:left + SIZE]).permute(2, 0, 1).float() / 255)
        windows.append(torch.stack(frames))
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("root", type=Path)
    parser.add_argument("--photo-clips", type=int, default=10)
    parser.add_argument("--video-clips", type=int, default=6)
    args = parser.parse_args()
    hr = args.root / "train_sharp"
    if hr.exists():
        sys.exit(f"{hr} exists; remove {args.root} to rebuild it")
    train_names = [f"{i:03d}" for i in range(100) if f"{i:03d}" not in VAL][:args.photo_clips + args.video_clips]
    photos = CorpusClips(str(args.corpus), "train", num_frames=TRAIN_FRAMES, patch_size=SIZE, video_share=0)
    clips = [photos.photo_clip(np.random.default_rng([28, k])) for k in range(args.photo_clips)]
    clips += video_windows(args.corpus, args.video_clips)
    for name, frames in zip(train_names, clips):
        write_clip(hr / name, frames)
    val_photos = CorpusClips(str(args.corpus), "val", num_frames=VAL_FRAMES, patch_size=SIZE)
    for k, name in enumerate(VAL):
        write_clip(hr / name, val_photos.photo_clip(np.random.default_rng([2800, k])))
    (args.root / "meta_info_train.txt").write_text(
        "".join(f"{n} {TRAIN_FRAMES} ({SIZE},{SIZE},3)\n" for n in train_names))
    (args.root / "meta_info_val.txt").write_text("".join(f"{n} {VAL_FRAMES} ({SIZE},{SIZE},3)\n" for n in VAL))
    subprocess.run([sys.executable, str(Path(__file__).parents[3] / "datasets" / "prepare.py"), "lr", "reds",
                    str(args.root), "--scales", "4"], check=True)
    print(f"{args.root}: {len(train_names)} training clips x {TRAIN_FRAMES} frames, {len(VAL)} validation clips x "
          f"{VAL_FRAMES} frames, {SIZE}x{SIZE} HR")


if __name__ == "__main__":
    main()
