"""Frames/s of a folder job in one process and on a local Ray cluster of 1 and 2 workers, same run.

    python experiments/benchmarks/ray_throughput.py [--frames 96] [--size 160x96] [--shipped fast]

Two clips of --frames frames each (a generated pattern), upscaled x4 by a shipped preset with
runtime=eager (so no run times its runtimes), each setting into a fresh folder. Ray's start-up is
timed apart from the job. Prints one line per setting and the ratios to the one-process run.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from vsr.inference import run
from vsr.io.synthetic import write_test_video


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", default="160x96")
    parser.add_argument("--shipped", default="fast")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="ray_throughput_"))
    source = work / "in"
    source.mkdir()
    for name in ("a.mp4", "b.mp4"):
        write_test_video(source / name, num_frames=args.frames, width=width, height=height)
    frames = 2 * args.frames
    job = {"input": str(source), "shipped": args.shipped, "runtime": "eager", "progress": False,
           "segment": args.frames // 2}  # each clip in two parts: a task per worker even for one clip
    results = {}
    import ray

    for name, extra in (("one process (2 threads)", {}), ("ray, 1 worker", {"engine": "ray", "workers": 1}),
                        ("ray, 2 workers", {"engine": "ray", "workers": 2})):
        started = time.perf_counter()
        if extra:
            ray.init(num_cpus=extra["workers"], include_dashboard=False, log_to_driver=False,
                     object_store_memory=256 * 2**20)
        ready = time.perf_counter()
        run({**job, **extra, "output": str(work / name.replace(" ", "_").replace(",", ""))})
        seconds = time.perf_counter() - ready
        if extra:
            ray.shutdown()
        results[name] = frames / seconds
        print(f"{name}: {frames} frames in {seconds:.1f} s = {frames / seconds:.2f} frames/s "
              f"(start-up {ready - started:.1f} s)", flush=True)
    base = results["one process (2 threads)"]
    print("ratios to one process: " + ", ".join(f"{k} {v / base:.2f}x" for k, v in results.items()))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
