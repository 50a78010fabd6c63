"""Trains the parity BasicVSR with BasicSR's own training script (`basicsr.train.train_pipeline`).

    .venv/bin/python experiments/basicvsr/parity/basicsr_train.py --data datasets/parity \
        --init runs/parity/init_basicsr.pth --iters 600 --val-every 200 --out runs/parity/basicsr

Writes the options file (the same settings as the train.py command in README.md) and runs BasicSR's
pipeline unchanged but for two CPU-only faults of its video validation: it allocates its metric table with
device='cuda' (sent to the CPU here), and it squeezes the cached clip in place after `feed_data`, which on a
GPU has already copied it with `.to('cuda')` but on the CPU aliases it (copied here as the GPU path does).
"""
import argparse
import sys
from pathlib import Path

import torch
import yaml

NUM_FEAT, NUM_BLOCK = 32, 3
FRAMES = 3  # frames per training clip; SPyNet at 64x64 LR dominates the CPU time, per flow


class TorchOnCPU:
    """`torch` for BasicSR's video model module, with `zeros(device='cuda')` placed on the CPU."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def zeros(*size, device=None, **kwargs):
        return torch.zeros(*size, device="cpu" if device == "cuda" else device, **kwargs)


def options(data: Path, init: Path, iters: int, val_every: int) -> dict:
    data = data.resolve()
    return {
        "name": "parity_basicsr", "model_type": "VideoRecurrentModel", "scale": 4, "num_gpu": 0, "manual_seed": 0,
        "datasets": {
            "train": {"name": "parity", "type": "REDSRecurrentDataset", "dataroot_gt": str(data / "train_sharp"),
                      "dataroot_lq": str(data / "train_sharp_bicubic" / "X4"),
                      "meta_info_file": str(data / "meta_info_train.txt"), "val_partition": "REDS4",
                      "test_mode": False, "io_backend": {"type": "disk"}, "num_frame": FRAMES, "gt_size": 256,
                      "interval_list": [1], "random_reverse": False, "use_hflip": True, "use_rot": True,
                      "num_worker_per_gpu": 1, "batch_size_per_gpu": 2, "dataset_enlarge_ratio": 1,
                      "prefetch_mode": None},
            "val": {"name": "REDS4", "type": "VideoRecurrentTestDataset", "dataroot_gt": str(data / "train_sharp"),
                    "dataroot_lq": str(data / "train_sharp_bicubic" / "X4"),
                    "meta_info_file": str(data / "meta_info_val.txt"), "cache_data": True,
                    "io_backend": {"type": "disk"}, "num_frame": -1},
        },
        "network_g": {"type": "BasicVSR", "num_feat": NUM_FEAT, "num_block": NUM_BLOCK, "spynet_path": None},
        "path": {"pretrain_network_g": str(init.resolve()), "strict_load_g": True, "resume_state": None},
        "train": {"ema_decay": 0, "optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "CosineAnnealingRestartLR", "periods": [iters], "restart_weights": [1],
                                "eta_min": 1e-7},
                  "total_iter": iters, "warmup_iter": -1, "fix_flow": 0, "flow_lr_mul": 0.125,
                  "pixel_opt": {"type": "CharbonnierLoss", "loss_weight": 1.0, "reduction": "mean"}},
        "val": {"val_freq": val_every, "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": True}}},
        "logger": {"print_freq": 50, "save_checkpoint_freq": val_every, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "gloo", "port": 29500},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--init", type=Path, required=True, help="BasicSR weights both trainers start from")
    parser.add_argument("--iters", type=int, default=600)
    parser.add_argument("--val-every", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True, help="BasicSR's experiments/ folder goes here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    opt_file = args.out / "train_parity_basicsr.yml"
    opt_file.write_text(yaml.safe_dump(options(args.data, args.init, args.iters, args.val_every), sort_keys=False))

    from basicsr.models import video_recurrent_model
    from basicsr.train import train_pipeline

    video_recurrent_model.torch = TorchOnCPU()
    model = video_recurrent_model.VideoRecurrentModel
    feed_data = model.feed_data
    model.feed_data = lambda self, data: feed_data(self, {k: v.clone() if torch.is_tensor(v) else v
                                                          for k, v in data.items()})
    sys.argv = [sys.argv[0], "-opt", str(opt_file)]
    train_pipeline(str(args.out.resolve()))


if __name__ == "__main__":
    main()
