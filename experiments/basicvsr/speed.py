"""Seconds per frame and peak memory of the paper-size BasicVSR and BasicVSR++ on the CPU, in every
runtime upscale.py can run them with, each (model, runtime, precision) in its own process so that the
peak memory is its own.

    python experiments/basicvsr/speed.py --frames 4 --size 180x320 --threads 2

Runtimes: eager and channels_last PyTorch, in fp32 and bf16 (oneDNN; AMX where the CPU has it). The
ONNX-based runtimes (onnxruntime, openvino) and ncnn cannot run these models: export.py refuses their
graphs (README.md beside this file says why), so each prints the reason instead of a time.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

RUNS = [("eager", "fp32"), ("channels_last", "fp32"), ("eager", "bf16"), ("channels_last", "bf16")]
NOT_RUNNABLE = {"onnxruntime": "export.py refuses ONNX graphs of these models (SPyNet's dynamic sizes; DCN needs opset 19)",
                "openvino": "reads the same ONNX graph, which export.py refuses",
                "ncnn": "single-frame models only (pnnx cannot convert the recurrent propagation)"}


def measure(name: str, runtime: str, precision: str, frames: int, height: int, width: int, threads: int) -> dict:
    from vsr.inference import Upscaler
    from vsr.models.basicvsr import BasicVSR, BasicVSRPlusPlus

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = {"basicvsr": BasicVSR, "basicvsr_pp": BasicVSRPlusPlus}[name]().eval()
    upscaler = Upscaler(model, 4, temporal=True, chunk=frames, device="cpu", runtime=runtime, precision=precision)
    clip = torch.rand(frames, 3, height, width)
    upscaler.upscale_clip(clip[:2])  # warm-up: oneDNN primitives, channels_last copies
    start = time.perf_counter()
    upscaler.upscale_clip(clip)
    seconds = time.perf_counter() - start
    return {"model": name, "runtime": upscaler.runtime.ran, "precision": upscaler.precision,
            "params": sum(p.numel() for p in model.parameters()), "frames": frames, "lr": f"{width}x{height}",
            "threads": threads, "seconds_per_frame": round(seconds / frames, 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", default="180x320", help="LR HEIGHTxWIDTH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="basicvsr,basicvsr_pp")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from vsr.inference.precision import native_bf16

    height, width = map(int, args.size.split("x"))
    if args.one:
        print(json.dumps(measure(*args.one, args.frames, height, width, args.threads)))
        return
    for name in args.models.split(","):
        for runtime, precision in RUNS:
            if precision == "bf16" and not native_bf16():
                print(json.dumps({"model": name, "runtime": runtime, "precision": precision, "not_runnable":
                                  "no native bf16 on this CPU (no AVX512-BF16 / AMX): PyTorch's slow convolution, "
                                  "about 70x fp32's time at 32x24 (not timed at full size)"}), flush=True)
                continue
            out = subprocess.run([sys.executable, __file__, "--one", name, runtime, precision, "--frames",
                                  str(args.frames), "--size", args.size, "--threads", str(args.threads)],
                                 capture_output=True, text=True)
            last = (out.stdout.strip().splitlines() or out.stderr.strip().splitlines() or ["?"])[-1]
            print(last if out.returncode == 0 else json.dumps({"model": name, "runtime": runtime,
                                                               "precision": precision, "failed": last}), flush=True)
        for runtime, why in NOT_RUNNABLE.items():
            print(json.dumps({"model": name, "runtime": runtime, "not_runnable": why}), flush=True)


if __name__ == "__main__":
    main()
