"""Check that bf16 costs nothing measurable for an export, and store the result with it.

    python experiments/benchmarks/precision_check.py vsr/weights/default/x4 [--corpus datasets/corpus] [--frames 8]

Runs the model as upscale.py does (`Upscaler.from_dir`: its windows and `ensemble=auto`; eager
PyTorch, bf16 through autocast) in fp32 and in bf16 on the corpus's held-out test clips under both
conditions of experiments/corpus/heldout.py (clean BI x4, and that LR through H.264 CRF 28), and
compares mean PSNR-Y (BasicSR's convention) and tOF. Prints a row per clip, the frames/s of each
precision, and writes its entry of `precision_check.json` in the export folder (`bf16` for PyTorch's
runtimes, `bf16_openvino` with `--runtime openvino`); `precision=auto` runs bf16 on a CPU with native
bf16 only where that file says it passed, and `runtime=auto` times OpenVINO in bf16 only where its
entry passed (vsr/inference/precision.py).
"""

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))
from heldout import conditions, load_clip, score  # noqa: E402  (experiments/corpus is not a package)

from vsr.inference.precision import CHECK_FILE, check_key, native_bf16, verdict, weights_sha256  # noqa: E402
from vsr.inference.upscaler import Upscaler  # noqa: E402


def run(folder: str, precision: str, lr: torch.Tensor, runtime: str = "eager") -> tuple[torch.Tensor, float]:
    # outscale: an x2 or x3 model runs as upscale.py runs it for the x4 these clips are made for
    upscaler = Upscaler.from_dir(folder, runtime=runtime, precision=precision, outscale=4)
    frames = (lr.permute(0, 2, 3, 1) * 255).round().byte().numpy()
    started = time.perf_counter()
    out = torch.stack(list(upscaler.stream_float(iter(frames))))
    return out, time.perf_counter() - started


def tally(scores: dict, row: dict, outputs: dict[str, torch.Tensor], hr: torch.Tensor) -> None:
    """Each precision's output scored against `hr`: appended to `scores` (for `verdict`) and set in `row`."""
    for precision, sr in outputs.items():
        measured = score(sr, hr)
        for key in ("psnr_y", "tof"):
            scores[precision][key].append(measured[key])
        row[precision] = {"psnr_y": round(measured["psnr_y"], 4), "tof": round(measured["tof"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--corpus", default="datasets/corpus")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the file")
    parser.add_argument("--runtime", default="eager", help="the bf16 runs' runtime: eager or channels_last (one "
                        "entry, `bf16`, in the file), or openvino (its own entry, `bf16_openvino`); fp32 runs eager")
    args = parser.parse_args()
    clips = sorted((Path(args.corpus) / "videos" / "test").iterdir())
    if not clips:
        sys.exit(f"{args.corpus}/videos/test: no clips; run python datasets/prepare.py corpus {args.corpus}")
    scores = {p: {"psnr_y": [], "tof": []} for p in ("fp32", "bf16")}
    seconds, frames, rows = {"fp32": 0.0, "bf16": 0.0}, 0, []
    for clip in clips:
        hr = load_clip(clip, args.frames)
        for condition, lr in conditions(hr, 28, None).items():
            row = {"clip": clip.name, "condition": condition}
            outputs = {}
            for precision in ("fp32", "bf16"):
                outputs[precision], spent = run(args.folder, precision, lr, args.runtime if precision == "bf16" else "eager")
                seconds[precision] += spent
            tally(scores, row, outputs, hr)
            frames += len(lr)
            rows.append(row)
            print(f"{clip.name:34s} {condition:11s} PSNR-Y fp32 {row['fp32']['psnr_y']:.3f} bf16 "
                  f"{row['bf16']['psnr_y']:.3f} ({row['bf16']['psnr_y'] - row['fp32']['psnr_y']:+.3f})  "
                  f"tOF {row['fp32']['tof']:.4f} / {row['bf16']['tof']:.4f}", flush=True)
    result = verdict(scores["fp32"], scores["bf16"])
    speed = {p: round(frames / s, 3) for p, s in seconds.items()}
    print(f"bf16: mean PSNR-Y {result['mean_psnr_y_delta_db']:+.4f} dB, tOF x{result['tof_ratio']:.4f}: "
          f"{'passed' if result['passed'] else 'FAILED'}; frames/s fp32 {speed['fp32']}, bf16 {speed['bf16']} "
          f"({speed['bf16'] / speed['fp32']:.2f}x; native bf16: {native_bf16()})")
    path = Path(args.folder) / CHECK_FILE
    record = json.loads(path.read_text()) if path.is_file() else {}  # the other runtimes' entries stay
    record[check_key("bf16", args.runtime)] = {
        **result, "weights_sha256": weights_sha256(args.folder), "clips": rows, "frames_per_clip": args.frames, "date": str(date.today()), "frames_per_second": speed,
        "cpu": platform.processor() or platform.machine(), "native_bf16": native_bf16(), "runtime": args.runtime,
        "command": " ".join(sys.argv)}
    if not args.dry_run:
        path.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
