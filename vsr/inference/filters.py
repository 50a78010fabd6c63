"""Pre/post-processing of clips `(T, 3, H, W)` float in [0, 1]: denoise, sharpen, colour match, resize."""

import numpy as np
import torch
from torch.nn import functional as F

from vsr.ops import gaussian_1d, opencv_flow, to_grey


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


def _remap(image: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Bilinear samples of `image` `(H, W[, C])` float32 at the positions `x` `(H', W', 2)`, or at
    (`x`, `y`) given as two `(H', W')` planes, edges repeated: OpenCV's remap, faster than
    `grid_sample` on CPU frames (experiments/benchmarks.md, "The temporal filter's cost")."""
    import cv2

    return cv2.remap(image, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def temporal_denoise(lr: torch.Tensor, sr: torch.Tensor, strength: float,
                     frames: range | None = None) -> torch.Tensor:
    """Motion-compensated temporal noise reduction of upscaled frames `sr` `(T, 3, H, W)` made from
    `lr` `(T, 3, h, w)`: each frame is averaged with its two neighbours, warped onto it by optical flow
    (DIS on the LR luma, scaled up) and weighted per pixel by how well the warped LR neighbour agrees
    with the LR frame, so occlusions, scene cuts and flow errors fall back to the frame itself. Noise
    and compression artifacts that differ from frame to frame average out; detail that moves with the
    flow is kept (no spatial blur). `strength` 0 (off) ... 1 (a neighbour that agrees weighs as much
    as the frame). The first and last frame of `sr` have one neighbour. Returns the frames `frames`
    (indices into `sr`; all by default): a window's context frames are read, not filtered."""
    frames = range(len(sr)) if frames is None else frames
    if strength <= 0 or len(sr) < 2:
        return sr[frames.start: frames.stop]
    import cv2

    grey = to_grey(lr)
    method = "dis" if max(grey.shape[1:]) >= 12 else "farneback"  # OpenCV's DIS refuses frames under 12 pixels
    (h, w), (big_h, big_w) = lr.shape[-2:], sr.shape[-2:]
    grid = np.dstack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
    big_grid = np.meshgrid(np.arange(big_w, dtype=np.float32), np.arange(big_h, dtype=np.float32))
    to_big = np.array([big_w / w, big_h / h], np.float32)
    small = lr.float().permute(0, 2, 3, 1).contiguous().numpy()  # small: the agreement reads a pixel's channels together
    big = sr.float().contiguous().numpy()
    out = np.empty((len(frames), 3, big_h, big_w), np.float32)
    own_weight = np.ones((big_h, big_w), np.float32)
    # OpenCV from here on: no torch op (and its thread pool) between the calls
    for frame, t in zip(out, frames):
        blended, blended_weight = big[t], own_weight
        for k in (t - 1, t + 1):
            if not 0 <= k < len(sr):
                continue
            flow = opencv_flow(grey[t], grey[k], method)
            agree = strength * np.exp(-np.square(_remap(small[k], grid + flow) - small[t]).mean(-1) / AGREEMENT**2)
            # bilinear with pixel centres aligned, as F.interpolate(align_corners=False); both are
            # linear, so scaling before resizing is scaling after
            weight = cv2.resize(agree.astype(np.float32), (big_w, big_h), interpolation=cv2.INTER_LINEAR)
            # x and y apart: OpenCV resizes one float plane 4-5x faster than a 2-channel image
            map_x, map_y = (cv2.add(cv2.resize(f, (big_w, big_h), interpolation=cv2.INTER_LINEAR), g)
                            for f, g in zip(cv2.split(flow * to_big), big_grid))
            for plane, blended_plane, neighbour in zip(frame, blended, big[k]):
                # the weighted mean so far against the warped neighbour, each by the weight it stands for
                cv2.blendLinear(blended_plane, _remap(neighbour, map_x, map_y), blended_weight, weight, dst=plane)
            blended, blended_weight = frame, blended_weight + weight
    return torch.from_numpy(out).clamp_(0, 1).to(sr.dtype)


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
