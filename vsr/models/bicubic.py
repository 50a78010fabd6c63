"""Bicubic upsampling by an integer factor as a low-resolution convolution + PixelShuffle.

The global skip of our generators adds the bicubically upsampled LR frame to the output. As an
`Interpolate` at high resolution it took ~15% of the default preset's time in OpenVINO; but for an
integer factor s every output phase (i, j) of s x s is a fixed 5x5 filter of the LR frame, so the
same values come from one depthwise convolution at low resolution (s^2 outputs per channel) and a
PixelShuffle. Same arithmetic as `F.interpolate(mode="bicubic", align_corners=False)`: Keys cubic
with a = -0.75, source coordinate (x + 0.5) / s - 0.5, borders replicated.
"""

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from vsr.models.descriptor import ModelDescriptor

A = -0.75  # PyTorch's (and OpenCV's) bicubic coefficient


def _cubic(x: float) -> float:
    x = abs(x)
    if x <= 1:
        return ((A + 2) * x - (A + 3)) * x * x + 1
    if x < 2:
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    return 0.0


@functools.lru_cache(maxsize=None)
def phase_taps(scale: int) -> torch.Tensor:
    """`(scale, 5)`: for output phase p, the weights of LR samples k-2 .. k+2 (k = x // scale)."""
    # on the CPU even inside `with torch.device("meta")` (model.json checks build there): the cache keeps it
    taps = torch.zeros(scale, 5, dtype=torch.float64, device="cpu")
    for p in range(scale):
        source = (p + 0.5) / scale - 0.5  # relative to LR sample k
        base = math.floor(source)
        for offset in range(base - 1, base + 3):
            taps[p, offset + 2] = _cubic(source - offset)
    return taps


@functools.lru_cache(maxsize=None)
def _weight(scale: int, channels: int) -> torch.Tensor:
    taps = phase_taps(scale)
    phases = torch.einsum("iy,jx->ijyx", taps, taps).reshape(scale * scale, 1, 5, 5)
    return phases.repeat(channels, 1, 1, 1).float()  # channel c's phases at c*s^2 + i*s + j (PixelShuffle order)


def _phases(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The 5x5 phase filters at low resolution (borders replicated): `(N, C*s^2, H, W)` in PixelShuffle order."""
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), weight, groups=x.shape[1])


def _phase_conv(x: torch.Tensor, weight: torch.Tensor, scale: int) -> torch.Tensor:
    """The phase filters, then PixelShuffle."""
    return F.pixel_shuffle(_phases(x, weight), scale)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """`(N, C, H, W)` -> `(N, C, sH, sW)`, equal to `F.interpolate(x, scale_factor=s, mode="bicubic")`."""
    weight = _weight(int(scale), x.shape[1]).to(device=x.device, dtype=x.dtype)
    return _phase_conv(x, weight, int(scale))


class BicubicUpsample(nn.Module):
    """`bicubic_upsample` as a module whose filter is a (non-persistent) buffer: exporters see a
    constant kernel of known shape, and checkpoints are unchanged."""

    weight: torch.Tensor  # buffer

    def __init__(self, scale: int, channels: int = 3):
        super().__init__()
        self.scale = int(scale)
        self.register_buffer("weight", _weight(self.scale, channels).clone(), persistent=False)

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(scale=self.scale, temporal=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _phase_conv(x, self.weight.to(x.dtype), self.scale)

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """The output before its PixelShuffle: a sub-pixel conv's output can be added to it, so that one
        shuffle at the end does the work of two (the same values: the shuffle only moves them)."""
        return _phases(x, self.weight.to(x.dtype))
