"""Does int8 post-training quantization pay for a single-frame export? Speed and the bf16 check's criterion.

    python experiments/benchmarks/int8_ptq.py vsr/weights/default/x4 [--calibration Percentile] [--frames 8]
        [--keep-fp32 /skip/Conv /conv_first/Conv /upsampler/upsampler.0/Conv] [--out results/int8.json]

ONNX Runtime's static quantization (`quantize_static`: QDQ, per-channel int8 weights, uint8
activations) of the folder's model.onnx, calibrated on 16 LR crops of the corpus's *train* photographs
(half of them through H.264 CRF 28). The image skip (a fixed bicubic convolution) must stay fp32;
`--keep-fp32` names the nodes left unquantized. Then, one run on this machine:
  - speed: 320x180 frames, best of 5, in ONNX Runtime and OpenVINO (which runs the QDQ graph as int8),
    fp32 graph against int8 graph, at the threads given;
  - quality: the held-out test clips under both conditions of experiments/corpus/heldout.py, PSNR-Y and
    tOF of int8 against fp32 (ONNX Runtime), judged by vsr.inference.precision.verdict, the check a
    bf16 variant must pass (at most 0.02 dB mean PSNR-Y lower, tOF at most 1% higher).
Not a runtime of upscale.py: it records whether int8 would be worth one (experiments/benchmarks.md).
"""

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments" / "corpus"))
from heldout import conditions, load_clip  # noqa: E402  (experiments/corpus is not a package)
from precision_check import tally  # noqa: E402

from vsr.data.degradations import codec_frames, imresize  # noqa: E402
from vsr.data.frames import read_image  # noqa: E402
from vsr.inference.precision import verdict  # noqa: E402
from vsr.io.images import to_tensor  # noqa: E402


def calibration_clips(corpus: Path, count: int = 16, side: int = 512) -> list[np.ndarray]:
    """LR centre crops (side / 4) of train photographs, every other one through H.264 CRF 28."""
    photos = sorted((corpus / "photos" / "train").iterdir())
    random.Random(0).shuffle(photos)
    clips = []
    for i, photo in enumerate(photos[:count]):
        hr = to_tensor([read_image(photo)])
        top, left = (hr.shape[-2] - side) // 2, (hr.shape[-1] - side) // 2
        lr = imresize(hr[..., top:top + side, left:left + side], (side // 4, side // 4)).clamp(0, 1)
        if i % 2:
            lr = codec_frames(lr.repeat(2, 1, 1, 1), "libx264", crf=28, preset="medium")[:1]
        clips.append(lr[None].numpy().astype(np.float32))
    return clips


def quantize(model: Path, out: Path, clips: list[np.ndarray], method: str, keep_fp32: list[str]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.inputs = iter(clips)

        def get_next(self):
            clip = next(self.inputs, None)
            return None if clip is None else {"lr": clip}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    op_types_to_quantize=["Conv"], nodes_to_exclude=keep_fp32, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=getattr(CalibrationMethod, method),
                    extra_options={"CalibPercentile": 99.999})


def best_seconds(call, x: np.ndarray, repeats: int = 5) -> float:
    call(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an export folder with model.onnx (single-frame)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "datasets" / "corpus")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--calibration", default="Percentile", choices=("MinMax", "Percentile", "Entropy"))
    parser.add_argument("--keep-fp32", nargs="*", default=["/skip/Conv", "/conv_first/Conv", "/upsampler/upsampler.0/Conv"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args()
    import onnxruntime as ort
    import openvino as ov

    if not (args.folder / "model.onnx").is_file():
        sys.exit(f"{args.folder}/model.onnx: missing; export the model with formats=[onnx]")
    with tempfile.TemporaryDirectory() as tmp:
        int8_file = Path(tmp) / "model.int8.onnx"
        quantize(args.folder / "model.onnx", int8_file, calibration_clips(args.corpus), args.calibration, args.keep_fp32)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    for name, path in (("fp32", args.folder / "model.onnx"), ("int8", int8_file))}
        core = ov.Core()
        compiled = {name: core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_NUM_THREADS": args.threads,
                                                                                  "INFERENCE_PRECISION_HINT": "f32"})
                    for name, path in (("fp32", args.folder / "model.onnx"), ("int8", int8_file))}
        frame = np.random.default_rng(0).random((1, 1, 3, 180, 320), dtype=np.float32)
        speed = {}
        for name in ("fp32", "int8"):
            speed[f"onnxruntime_{name}"] = 1 / best_seconds(lambda x, s=sessions[name]: s.run(None, {"lr": x}), frame)
            speed[f"openvino_{name}"] = 1 / best_seconds(compiled[name], frame)
        print("frames/s at 320x180 -> 1280x720: " + ", ".join(f"{k} {v:.2f}" for k, v in speed.items())
              + f"; int8 / fp32: ONNX Runtime {speed['onnxruntime_int8'] / speed['onnxruntime_fp32']:.2f}x, "
              f"OpenVINO {speed['openvino_int8'] / speed['openvino_fp32']:.2f}x", flush=True)

        scores = {p: {"psnr_y": [], "tof": []} for p in ("fp32", "int8")}
        rows = []
        for clip in sorted(p for p in (args.corpus / "videos" / "test").iterdir() if p.is_dir()):
            hr = load_clip(clip, args.frames)
            for condition, lr in conditions(hr, 28, None).items():
                row = {"clip": clip.name, "condition": condition}
                tally(scores, row, {name: torch.cat([torch.from_numpy(session.run(None, {"lr": image[None, None].numpy()})[0][0])
                                                     for image in lr]) for name, session in sessions.items()}, hr)
                rows.append(row)
                print(f"{clip.name:34s} {condition:11s} PSNR-Y fp32 {row['fp32']['psnr_y']:.3f} int8 "
                      f"{row['int8']['psnr_y']:.3f} ({row['int8']['psnr_y'] - row['fp32']['psnr_y']:+.3f})", flush=True)
    result = verdict(scores["fp32"], scores["int8"])
    print(f"int8 ({args.calibration} calibration, fp32 kept: {', '.join(args.keep_fp32)}): mean PSNR-Y "
          f"{result['mean_psnr_y_delta_db']:+.4f} dB, tOF x{result['tof_ratio']:.4f}: "
          f"{'passed' if result['passed'] else 'FAILED'} the bf16 check's criterion")
    if args.out:
        args.out.write_text(json.dumps({"int8": {**result, "calibration": args.calibration, "keep_fp32": args.keep_fp32,
                                                 "frames_per_second": {k: round(v, 3) for k, v in speed.items()},
                                                 "clips": rows, "frames_per_clip": args.frames,
                                                 "cpu": platform.processor() or platform.machine(), "threads": args.threads,
                                                 "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
                                                 "command": " ".join(sys.argv)}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
