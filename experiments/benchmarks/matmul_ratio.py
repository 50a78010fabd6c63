"""Effective GFLOP/s of a model against the fp32 matmul rate measured right beside it, in rounds.

    .venv/bin/python experiments/benchmarks/matmul_ratio.py [--rounds 3] \
        --models experiments/shipped_x4/fast:onnxruntime,openvino,ncnn recurrent_rrdb:openvino

speed.py measures the matmul rate once, at the start of a run, and the models over the following
minutes; this machine's speed drifts by 10-20% over minutes, which moves the ratio by as much (the same
shipped model read 74% and 103% of "the" matmul rate in two runs). Here every timing of a model is
bracketed by matmul timings (before and after; the higher of the two counts, since a matmul disturbed
by other load reads low and would flatter the model), and the ratio is reported per round and as the
median of the rounds. MODEL is a conf/model preset or an export folder (its model.json's
architecture; speed does not depend on the weights); RUNTIMES are speed.py's variants. Recurrent
models run 6-frame clips (speed.py's default), 320x180 -> x4.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

import speed
import torch

from vsr.runtimes.model_files import read_model_json


def model_config(spec: str) -> tuple[str, dict]:
    if (Path(spec) / "model.json").is_file():
        folder, meta = read_model_json(spec)
        return folder.name, meta["architecture"]
    return spec, speed.preset_config(spec, 4)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="MODEL:RUNTIME[,RUNTIME...]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--clip-frames", type=int, default=6)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed repeats per model timing")
    parser.add_argument("--matmul-time", type=float, default=1.0, help="seconds of timed repeats per matmul timing")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    frames = speed.test_frames(width, height, args.clip_frames)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.models:
            name, _, variants = spec.partition(":")
            label, config = model_config(name)
            model = speed.build(config)
            t = args.clip_frames if speed.is_temporal(config) else 1
            clip = speed.clip_tensor(frames, t)
            flops = speed.flops_per_frame(model, clip)
            for variant in (variants or "channels_last").split(","):
                runner, _ = speed.make_variant(variant, model, config, clip, Path(tmp) / f"{label}_{variant}")
                runs.append({"model": label, "runtime": variant, "gflop_per_frame": flops / 1e9,
                             "run": lambda runner=runner, clip=clip: runner(clip), "frames": t, "ratios": [], "fps": []})
        for r in range(args.rounds):
            for run in runs:
                before = speed.matmul_rate(2048, torch.float32, args.matmul_time)
                best, _, _ = speed.timed(run["run"], args.min_time, 3)
                after = speed.matmul_rate(2048, torch.float32, args.matmul_time)
                fps = run["frames"] / best
                matmul = max(before, after)  # a timing disturbed by other load reads low: the higher one is the limit
                run["fps"].append(fps)
                run["ratios"].append(fps * run["gflop_per_frame"] / matmul)
                print(f"round {r + 1}: {run['model']} {run['runtime']}: {fps:.2f} frames/s, "
                      f"{fps * run['gflop_per_frame']:.0f} GFLOP/s, matmul {before:.0f}/{after:.0f} GFLOP/s "
                      f"-> {run['ratios'][-1]:.0%}", flush=True)
    print("\n| model | runtime | GFLOP/frame | frames/s (median) | vs fp32 matmul, per round | median |")
    print("|---|---|---:|---:|---|---:|")
    for run in runs:
        print(f"| {run['model']} | {run['runtime']} | {run['gflop_per_frame']:.1f} | {statistics.median(run['fps']):.2f} | "
              f"{', '.join(f'{x:.0%}' for x in run['ratios'])} | **{statistics.median(run['ratios']):.0%}** |")
        del run["run"]
    return runs


if __name__ == "__main__":
    main()
