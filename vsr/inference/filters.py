"""Pre/post-processing of clips `(T, 3, H, W)` float in [0, 1]: denoise, sharpen, colour match, resize."""

import torch
from torch.nn import functional as F

from vsr.ops import gaussian_1d


def gaussian_blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur of `(N, C, H, W)` with reflected borders."""
    radius = max(1, int(round(3 * sigma)))
    kernel = gaussian_1d(2 * radius + 1, sigma, x.dtype, x.device)
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[-2] - 1), min(radius, x.shape[-1] - 1)
    kh, kw = kernel[radius - pad_h: radius + pad_h + 1], kernel[radius - pad_w: radius + pad_w + 1]
    # each channel's (possibly cropped) kernel sums to 1, so a blur keeps the brightness
    kh = (kh / kh.sum()).view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = (kw / kw.sum()).view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (0, 0, pad_h, pad_h), mode="reflect") if pad_h else x, kh, groups=c)
    return F.conv2d(F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w else x, kw, groups=c)


def denoise(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Light noise reduction before upscaling: blend each frame with its Gaussian blur (sigma 1).
    `strength` 0 (off) ... 1 (fully blurred)."""
    if strength <= 0:
        return x
    return torch.lerp(x, gaussian_blur(x, 1.0), float(strength))


def sharpen(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Unsharp mask after upscaling: `x + amount * (x - blur(x))`, clamped to [0, 1]."""
    if amount <= 0:
        return x
    return (x + amount * (x - gaussian_blur(x, 1.0))).clamp(0, 1)


def color_match(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Give each frame of `out` the per-channel mean and std of the same frame of `ref`
    (the input), undoing colour shifts a model may introduce."""
    mu_o, sd_o = out.mean((-2, -1), keepdim=True), out.std((-2, -1), keepdim=True)
    mu_r, sd_r = ref.mean((-2, -1), keepdim=True), ref.std((-2, -1), keepdim=True)
    return ((out - mu_o) * (sd_r / sd_o.clamp_min(1e-6)) + mu_r).clamp(0, 1)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of `(N, C, H, W)` to `size=(H, W)`, antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=shrink).clamp(0, 1)
