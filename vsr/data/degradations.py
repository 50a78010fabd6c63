"""HR -> LR degradations, applied to a whole clip `(T, C, H, W)` float in [0, 1] the same way."""

import torch
from torch.nn import functional as F

from vsr import SUPPORTED_SCALES
from vsr.errors import UserError, check_choice


def check_divisible(option: str, size: int, scale: int) -> None:
    if size % scale:
        raise UserError(f"{option}={size} is not divisible by scale={scale}; use a multiple of {scale}")


class BicubicDegradation:
    """BI: antialiased bicubic downsampling by `scale` (the REDS / Vimeo-90K BI protocol)."""

    def __init__(self, scale: int = 4):
        check_choice("scale", scale, SUPPORTED_SCALES)
        self.scale = scale

    def __call__(self, hr: torch.Tensor) -> torch.Tensor:
        h, w = hr.shape[-2:]
        check_divisible("HR height", h, self.scale)
        check_divisible("HR width", w, self.scale)
        lr = F.interpolate(hr, size=(h // self.scale, w // self.scale), mode="bicubic",
                           align_corners=False, antialias=True)
        return lr.clamp(0, 1)
