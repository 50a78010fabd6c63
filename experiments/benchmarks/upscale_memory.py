"""Peak memory of `upscale.py` versus video length: memory must not grow with the number of frames.

    python experiments/benchmarks/upscale_memory.py [--frames 30 300] [--size 96x72] [--weights DIR]

Generates a clip with audio per length, and upscales each in a fresh process (the real
`vsr.inference.run`, decode -> chunks -> encode) with the recurrent_rrdb preset architecture
(random weights unless --weights is given: memory does not depend on the weights' values).
Reports the process's peak RSS and the growth of RSS during the upscale (peak minus RSS once
the model is loaded), which isolates what streaming holds from the fixed cost of torch itself.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    """Current resident set size of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(video: str, output: str, weights: str, chunk: int, overlap: int, runtime: str = "auto") -> None:
    """Upscale once and print a JSON line with the memory figures."""
    import torch

    from vsr.inference import load, run

    load(weights)  # warm the import/allocator paths the run will use
    before = rss_mib()
    start = time.perf_counter()
    summary = run({"input": video, "output": output, "weights": weights, "chunk": chunk, "overlap": overlap,
                   "progress": False, "overwrite": True, "device": "cpu", "runtime": runtime})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"frames": summary["frames"], "seconds": time.perf_counter() - start, "rss_before_mib": before,
                      "fps": summary["fps"], "runtime": summary.get("runtime"),  # upscale's own, start-up excluded
                      "peak_rss_mib": peak, "growth_mib": peak - before, "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 300])
    parser.add_argument("--size", default="96x72", help="input WIDTHxHEIGHT")
    parser.add_argument("--weights", help="export directory (default: the preset with random weights)")
    parser.add_argument("--chunk", type=int, default=28)  # as upscale.py with the shipped 32-frame ONNX graph
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--runtime", default="auto", help="upscale.py's runtime= (default auto)")
    parser.add_argument("--child", nargs=3, metavar=("VIDEO", "OUTPUT", "WEIGHTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.chunk, args.overlap, args.runtime)
        return

    from vsr.io.synthetic import write_test_video

    width, height = (int(v) for v in args.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:
            from speed import preset_config  # conf/model/recurrent_rrdb.yaml, resolved

            from vsr.export import export
            from vsr.models.build import build_generator

            weights = str(Path(tmp) / "weights")
            config = preset_config("recurrent_rrdb")
            export(build_generator(dict(config)), config, weights)
        for frames in args.frames:
            video = write_test_video(Path(tmp) / f"in{frames}.mp4", num_frames=frames, width=width, height=height)
            result = subprocess.run([sys.executable, __file__, "--child", str(video), str(Path(tmp) / "out.mp4"),
                                     weights, "--chunk", str(args.chunk), "--overlap", str(args.overlap),
                                     "--runtime", args.runtime],
                                    capture_output=True, text=True, check=False)
            if result.returncode:
                sys.exit(f"upscale of {frames} frames failed:\n{result.stderr}")
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(f"input {width}x{height} -> x4, chunk={args.chunk}, overlap={args.overlap}")
    print("| frames | seconds | runtime | RSS before (MiB) | peak RSS (MiB) | growth (MiB) |")
    print("|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['frames']} | {r['seconds']:.1f} | {r['runtime']} | {r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} "
              f"| {r['growth_mib']:.0f} |")
    if len(rows) >= 2:
        print(f"peak RSS ratio {rows[-1]['frames']} / {rows[0]['frames']} frames: "
              f"{rows[-1]['peak_rss_mib'] / rows[0]['peak_rss_mib']:.3f} (must be <= 1.2)")


if __name__ == "__main__":
    main()
