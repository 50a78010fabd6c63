"""Does data loading keep up with training? Loader clips/s next to generator training steps/s.

    .venv/bin/python experiments/benchmarks/dataloader.py [--root datasets/REDS] [--workers 2] [--device cuda]

Without --root it writes a REDS-shaped tree of synthetic 1280x720 PNG frames (+ stored X4 LR) to a
temporary folder. The loader is `conf/data/reds.yaml`'s training set (15-frame windows, 256 HR crops,
augmentation, batch 4); training steps are the default generator (`conf/model/recurrent_rrdb.yaml`)
doing forward + backward + Adam on batches of that shape. Loading is not the bottleneck when
clips/s >= batch_size x steps/s.
"""

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader

CONF = Path(__file__).resolve().parents[2] / "conf"


def synthetic_reds(root: Path, clips: int, frames: int, width: int, height: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(clips):
        name = f"{c + 100:03d}"  # not a REDS4 id, so every clip is a training clip
        hr_dir, lr_dir = root / "train_sharp" / name, root / "train_sharp_bicubic" / "X4" / name
        hr_dir.mkdir(parents=True)
        lr_dir.mkdir(parents=True)
        for t in range(frames):
            small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
            hr = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
            hr = np.clip(hr.astype(np.int16) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)  # texture
            cv2.imwrite(str(hr_dir / f"{t:08d}.png"), hr)
            cv2.imwrite(str(lr_dir / f"{t:08d}.png"), cv2.resize(hr, (width // 4, height // 4),
                                                                 interpolation=cv2.INTER_AREA))
    for name in ("000", "011", "015", "020"):  # the REDS4 clips must exist for the split
        (root / "train_sharp" / name).mkdir(parents=True)
        cv2.imwrite(str(root / "train_sharp" / name / "00000000.png"), np.zeros((height, width, 3), np.uint8))
    return root


def loader_rate(cfg, workers: int, batches: int) -> float:
    train = instantiate(cfg.data.train)
    loader = DataLoader(train, batch_size=cfg.data.batch_size, shuffle=True, drop_last=True, num_workers=workers,
                        persistent_workers=workers > 0)
    it = iter(loader)
    next(it)  # workers started, first files cached by the OS like any epoch after the first
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        clips += batch["lr"].shape[0]
    return clips / (time.perf_counter() - start)


def train_rate(cfg, device: str, steps: int) -> float:
    generator = instantiate(cfg.model).to(device)
    optimiser = torch.optim.Adam(generator.parameters(), lr=1e-4)
    b, t = cfg.data.batch_size, cfg.data.train.num_frames
    p = cfg.data.train.patch_size
    lr = torch.rand(b, t, 3, p // cfg.scale, p // cfg.scale, device=device)
    hr = torch.rand(b, t, 3, p, p, device=device)
    amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.startswith("cuda") else None

    def step():
        optimiser.zero_grad(set_to_none=True)
        if amp is not None:
            with amp:
                loss = (generator(lr).float() - hr).abs().mean()
        else:
            loss = (generator(lr) - hr).abs().mean()
        loss.backward()
        optimiser.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="a REDS folder (default: a synthetic one in a temp dir)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.train.num_frames=7")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        root = args.root or synthetic_reds(Path(tmp) / "REDS", args.clips, args.frames, 1280, 720)
        with initialize_config_dir(str(CONF), version_base=None):
            cfg = compose("train", overrides=["data=reds", f"data.root={root}", *args.overrides])
        b, t, p = cfg.data.batch_size, cfg.data.train.num_frames, cfg.data.train.patch_size
        print(f"preset: data=reds batch {b} x {t} frames, HR patch {p}, model {cfg.model._target_} x{cfg.scale}; "
              f"{torch.get_num_threads()} torch threads, {args.device}")
        steps = train_rate(cfg, args.device, args.steps)
        print(f"generator training: {steps:.3f} steps/s -> needs {steps * b:.2f} clips/s")
        for workers in args.workers:
            rate = loader_rate(cfg, workers, args.batches)
            verdict = "keeps up" if rate >= steps * b else "BOTTLENECK"
            print(f"loader, {workers} workers: {rate:.2f} clips/s ({rate / b:.2f} batches/s) -> {verdict}")


if __name__ == "__main__":
    main()
