"""Seconds per frame and peak memory of the paper-size BasicVSR and BasicVSR++ (eager PyTorch, fp32, CPU)
on a clip of LR frames; each model in its own process so that the peak memory is its own.

    python experiments/basicvsr/speed.py --frames 8 --size 180x320 --threads 2
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def measure(name: str, frames: int, height: int, width: int, threads: int) -> dict:
    from vsr.models.basicvsr import BasicVSR, BasicVSRPlusPlus

    torch.set_num_threads(threads)
    model = {"basicvsr": BasicVSR, "basicvsr_pp": BasicVSRPlusPlus}[name]().eval()
    clip = torch.rand(1, frames, 3, height, width)
    with torch.inference_mode():
        model(clip[:, :2])  # warm-up
        start = time.perf_counter()
        model(clip)
        seconds = time.perf_counter() - start
    return {"model": name, "params": sum(p.numel() for p in model.parameters()), "frames": frames,
            "lr": f"{width}x{height}", "threads": threads, "seconds_per_frame": seconds / frames,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="180x320", help="LR HEIGHTxWIDTH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = map(int, args.size.split("x"))
    if args.one:
        print(json.dumps(measure(args.one, args.frames, height, width, args.threads)))
        return
    for name in ("basicvsr", "basicvsr_pp"):
        out = subprocess.run([sys.executable, __file__, "--one", name, "--frames", str(args.frames), "--size",
                              args.size, "--threads", str(args.threads)], capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
