"""Upsamplers: sub-pixel convolution (PixelShuffle) and ESRGAN's nearest-neighbour + conv."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from vsr import SUPPORTED_SCALES
from vsr.errors import check_choice


def _stages(scale: int) -> list[int]:
    """Factor of each upsampling stage: x2 stages for powers of two, one x3 stage for 3."""
    check_choice("scale", scale, SUPPORTED_SCALES)
    return [3] if scale == 3 else [2] * int(math.log2(scale))


class PixelShuffleUpsampler(nn.Sequential):
    """conv(C -> r^2 C) + PixelShuffle(r) + LeakyReLU per stage, then conv_hr and conv_last.

    Args:
        num_feat: feature channels in.
        scale: total factor (2, 3, 4 or 8).
        num_out_ch: image channels out.
    """

    def __init__(self, num_feat: int, scale: int, num_out_ch: int = 3):
        layers: list[nn.Module] = []
        for r in _stages(scale):
            layers += [nn.Conv2d(num_feat, num_feat * r * r, 3, 1, 1), nn.PixelShuffle(r),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                   nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)]
        super().__init__(*layers)


class LowResPixelShuffleUpsampler(nn.Sequential):
    """One conv at low resolution to `num_out_ch * scale^2` channels, then PixelShuffle(scale)
    (ESPCN; the tail of Real-ESRGAN's compact video model). No convolution runs at high
    resolution, so it costs ~1/20 of `PixelShuffleUpsampler` at x4: the fast presets use it."""

    def __init__(self, num_feat: int, scale: int, num_out_ch: int = 3):
        _stages(scale)  # validates the factor
        super().__init__(nn.Conv2d(num_feat, num_out_ch * scale * scale, 3, 1, 1), nn.PixelShuffle(scale))


class NearestConvUpsampler(nn.Module):
    """ESRGAN's upsampler: nearest x2 + conv per stage (`conv_up1`, `conv_up2`, ...), then
    `conv_hr` and `conv_last`. Parameter names match BasicSR's `RRDBNet`."""

    def __init__(self, num_feat: int, scale: int, num_out_ch: int = 3):
        super().__init__()
        self.factors = _stages(scale)
        for i, _ in enumerate(self.factors, start=1):
            setattr(self, f"conv_up{i}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, r in enumerate(self.factors, start=1):
            conv = getattr(self, f"conv_up{i}")
            x = self.lrelu(conv(F.interpolate(x, scale_factor=r, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(x)))
