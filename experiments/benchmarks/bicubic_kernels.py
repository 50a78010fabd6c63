"""How far is PyTorch's antialiased bicubic from MATLAB's `imresize`? (BI protocol, README numbers)

    .venv/bin/python experiments/benchmarks/bicubic_kernels.py

For scikit-image's photos (HR cut to a multiple of 8), downscale with both kernels and print:
- PSNR between the two LR images (RGB, uint8-rounded), whole image and with `scale` border px cut;
- the bicubic-upsampling baseline PSNR-Y against HR (BasicSR convention: Y, `scale` px cropped)
  when LR comes from each kernel, and the difference in dB.
"""

import numpy as np
import torch
from skimage import data as skdata

from vsr.data.degradations import BicubicDegradation
from vsr.metrics.fidelity import psnr
from vsr.models.rrdb import upsample_frames

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def load(name: str) -> torch.Tensor:
    image = np.ascontiguousarray(getattr(skdata, name)()[..., :3])
    hr = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    h, w = hr.shape[-2:]
    return hr[..., : h - h % 8, : w - w % 8]


def quantise(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'scale':>5} {'photo':<22} {'LR PSNR all':>11} {'LR PSNR inner':>13} "
          f"{'bic Y matlab':>12} {'bic Y torch':>11} {'diff dB':>8}")
    for scale in (2, 3, 4, 8):
        diffs, lr_all, lr_inner = [], [], []
        for name in PHOTOS:
            hr = quantise(load(name))
            h, w = hr.shape[-2:]
            hr = hr[..., : h - h % (scale * 8), : w - w % (scale * 8)]
            lr_m = quantise(BicubicDegradation(scale, "matlab")(hr))
            lr_t = quantise(BicubicDegradation(scale, "torch")(hr))
            p_all = float(psnr(lr_t, lr_m))
            p_in = float(psnr(lr_t, lr_m, crop_border=scale))
            bic_m = float(psnr(quantise(upsample_frames(lr_m, scale)), hr, crop_border=scale, y_channel=True))
            bic_t = float(psnr(quantise(upsample_frames(lr_t, scale)), hr, crop_border=scale, y_channel=True))
            diffs.append(bic_t - bic_m)
            lr_all.append(p_all)
            lr_inner.append(p_in)
            print(f"{scale:>5} {name:<22} {p_all:>11.2f} {p_in:>13.2f} {bic_m:>12.3f} {bic_t:>11.3f} {bic_t - bic_m:>+8.3f}")
        print(f"{scale:>5} {'mean':<22} {np.mean(lr_all):>11.2f} {np.mean(lr_inner):>13.2f} {'':>12} {'':>11} "
              f"{np.mean(diffs):>+8.3f}  (max |diff| {np.max(np.abs(diffs)):.3f})")


if __name__ == "__main__":
    main()
