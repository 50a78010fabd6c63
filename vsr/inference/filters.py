"""Pre/post-processing of clips `(T, 3, H, W)` float in [0, 1]: denoise, sharpen, colour match, resize."""

import torch
from torch.nn import functional as F

from vsr.ops import flow_warp, gaussian_1d, opencv_flow, to_grey


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


AGREEMENT = 0.05  # RMS difference (of [0, 1] values) at which an aligned neighbour's weight falls to 1/e


def temporal_denoise(lr: torch.Tensor, sr: torch.Tensor, strength: float) -> torch.Tensor:
    """Motion-compensated temporal noise reduction of upscaled frames `sr` `(T, 3, H, W)` made from
    `lr` `(T, 3, h, w)`: each frame is averaged with its two neighbours, warped onto it by optical flow
    (DIS on the LR luma, scaled up) and weighted per pixel by how well the warped LR neighbour agrees
    with the LR frame, so occlusions, scene cuts and flow errors fall back to the frame itself. Noise
    and compression artifacts that differ from frame to frame average out; detail that moves with the
    flow is kept (no spatial blur). `strength` 0 (off) ... 1 (a neighbour that agrees weighs as much
    as the frame). The first and last frame of `sr` have one neighbour."""
    if strength <= 0 or len(sr) < 2:
        return sr
    grey = to_grey(lr)
    method = "dis" if max(grey.shape[1:]) >= 12 else "farneback"  # OpenCV's DIS refuses frames under 12 pixels
    ratio = torch.tensor([sr.shape[-1] / lr.shape[-1], sr.shape[-2] / lr.shape[-2]], dtype=lr.dtype).view(1, 2, 1, 1)
    out = torch.empty_like(sr)
    for t in range(len(sr)):
        near = [k for k in (t - 1, t + 1) if 0 <= k < len(sr)]
        flow = torch.stack([torch.from_numpy(opencv_flow(grey[t], grey[k], method)) for k in near]).permute(0, 3, 1, 2)
        flow = flow.to(lr.dtype)
        weight = strength * torch.exp(-(flow_warp(lr[near], flow) - lr[t]).pow(2).mean(1, keepdim=True) / AGREEMENT**2)
        flow = F.interpolate(flow, size=sr.shape[-2:], mode="bilinear", align_corners=False).mul_(ratio)
        weight = F.interpolate(weight, size=sr.shape[-2:], mode="bilinear", align_corners=False)
        moved = flow_warp(sr[near].to(flow.dtype), flow).mul_(weight).sum(0)
        out[t] = moved.add_(sr[t]).div_(weight.sum(0).add_(1)).clamp_(0, 1).to(sr.dtype)
    return out


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
