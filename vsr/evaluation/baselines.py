"""Baselines with no weights: interpolate each LR frame by `scale`.

`model=bicubic|lanczos|nearest` (conf/model/<mode>.yaml) and `compare=[bicubic, ...]`.
Bicubic and nearest are the interpolation of the generators' global skip
(`vsr.models.rrdb.upsample_frames`, PyTorch bicubic a=-0.75); Lanczos is OpenCV's 8x8 Lanczos.
"""

import cv2
import numpy as np
import torch
from einops import rearrange
from torch import nn

from vsr import SUPPORTED_SCALES
from vsr.errors import check_choice
from vsr.models.descriptor import ModelDescriptor
from vsr.models.rrdb import upsample_frames

BASELINES = ("bicubic", "lanczos", "nearest")


class Interpolation(nn.Module):
    """Upscale a clip `(B, T, 3, H, W)` -> `(B, T, 3, scale*H, scale*W)` by interpolation, clamped to [0, 1].

    Args:
        mode: "bicubic", "lanczos" or "nearest".
        scale: 2, 3, 4 or 8.
    """

    def __init__(self, mode: str = "bicubic", scale: int = 4):
        super().__init__()
        check_choice("model.mode", mode, BASELINES)
        check_choice("scale", scale, SUPPORTED_SCALES)
        self.mode, self.scale = mode, scale

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(scale=self.scale, temporal=False)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        b = lr.shape[0]
        frames = rearrange(lr, "b t c h w -> (b t) c h w")
        if self.mode == "lanczos":
            up = self._lanczos(frames)
        else:
            up = upsample_frames(frames, self.scale, self.mode)
        return rearrange(up.clamp(0, 1), "(b t) c h w -> b t c h w", b=b)

    def _lanczos(self, frames: torch.Tensor) -> torch.Tensor:
        h, w = frames.shape[-2:]
        size = (w * self.scale, h * self.scale)
        images = frames.permute(0, 2, 3, 1).float().cpu().numpy()
        up = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_LANCZOS4) for im in images])
        return torch.from_numpy(up).permute(0, 3, 1, 2).to(frames.device, frames.dtype)
