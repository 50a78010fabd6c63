"""PSNR and SSIM computed the way BasicSR computes them, so numbers compare with papers.

Every function takes frames `(N, 3, H, W)`: float RGB in [0, 1] (rounded to 8-bit levels
first, as if saved to PNG) or uint8. Work is done in float64 on 0-255 levels, per frame:
the result is a `(N,)` float64 tensor. `crop_border` pixels are dropped on each side
(BasicSR uses `crop_border = scale`), and `y_channel=True` scores the Y channel of
BT.601 YCbCr (studio range 16-235), the convention of most VSR papers.
"""

import torch
from torch.nn import functional as F

from vsr.errors import UserError
from vsr.ops import STUDIO_Y_OFFSET, STUDIO_Y_WEIGHTS, gaussian_1d

# SSIM constants of Wang et al. 2004 for 8-bit data, 11x11 Gaussian window, sigma 1.5.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2


def to_levels(frames: torch.Tensor) -> torch.Tensor:
    """Frames `(..., H, W)` as float64 8-bit levels in [0, 255]: uint8 kept, floats in [0, 1] rounded."""
    if frames.dtype == torch.uint8:
        return frames.double()
    return (frames.double().clamp(0, 1) * 255).round()


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Float frames in [0, 1] rounded to uint8, the way they would be saved to disk."""
    return frames if frames.dtype == torch.uint8 else to_levels(frames).to(torch.uint8)


def rgb_to_y(levels: torch.Tensor) -> torch.Tensor:
    """Y of BT.601 YCbCr: `(N, 3, H, W)` RGB levels 0-255 -> `(N, 1, H, W)` in [16, 235], not rounded."""
    weights = levels.new_tensor(STUDIO_Y_WEIGHTS).view(1, 3, 1, 1)
    return (levels / 255.0 * weights).sum(dim=1, keepdim=True) + STUDIO_Y_OFFSET  # BasicSR `bgr2ycbcr(y_only=True)` * 255


def check_pair(sr: torch.Tensor, gt: torch.Tensor) -> None:
    """One clear line when the two clips cannot be compared frame by frame."""
    if sr.ndim != 4 or gt.ndim != 4 or sr.shape[1] != 3 or gt.shape[1] != 3:
        raise UserError(f"expected frames (N, 3, H, W); got SR {tuple(sr.shape)} and GT {tuple(gt.shape)}")
    if sr.shape[0] == 0 or gt.shape[0] == 0:
        raise UserError("empty clip: SR or GT has zero frames")
    if sr.shape != gt.shape:
        raise UserError(f"SR and GT differ in size: SR is {_describe(sr)}, GT is {_describe(gt)}")


def _describe(frames: torch.Tensor) -> str:
    n, _, h, w = frames.shape
    return f"{n} frames of {w}x{h}"


def crop(frames: torch.Tensor, border: int) -> torch.Tensor:
    """Drop `border` pixels on every side of `(..., H, W)` frames."""
    if border <= 0:
        return frames
    h, w = frames.shape[-2:]
    if h <= 2 * border or w <= 2 * border:
        raise UserError(f"frames of {w}x{h} are too small to crop {border} pixels at each border")
    return frames[..., border:h - border, border:w - border]


def _prepare(sr, gt, crop_border: int, y_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    check_pair(sr, gt)
    sr, gt = to_levels(sr), to_levels(gt)
    if y_channel:
        sr, gt = rgb_to_y(sr), rgb_to_y(gt)
    return crop(sr, crop_border), crop(gt, crop_border)


def psnr(sr: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Per-frame PSNR in dB, `10 log10(255^2 / MSE)`; `inf` where a frame is identical to its GT."""
    sr, gt = _prepare(sr, gt, crop_border, y_channel)
    mse = (sr - gt).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(255.0**2 / mse)  # mse == 0 gives +inf, as BasicSR returns


def _gaussian_1d(dtype=torch.float64, device=None) -> torch.Tensor:
    """The normalised 11-tap Gaussian (sigma 1.5) of cv2.getGaussianKernel."""
    return gaussian_1d(SSIM_WINDOW, SSIM_SIGMA, dtype, device)


def ssim(sr: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, y_channel: bool = False) -> torch.Tensor:
    """Per-frame SSIM (Wang et al. 2004 with BasicSR's window): mean over the valid region and channels."""
    sr, gt = _prepare(sr, gt, crop_border, y_channel)
    h, w = sr.shape[-2:]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise UserError(f"frames of {w}x{h} (after the border crop) are smaller than the "
                        f"{SSIM_WINDOW}x{SSIM_WINDOW} SSIM window")
    # One frame at a time, and the Gaussian as two 1-D passes (it is separable): a 2-D float64
    # conv over a 30-frame 720p clip would unfold into ~26 GB.
    return torch.cat([_ssim_frames(a[None], b[None]) for a, b in zip(sr, gt)])


def _ssim_frames(sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    channels = sr.shape[1]
    g = _gaussian_1d(sr.dtype, sr.device)
    rows = g.view(1, 1, 1, -1).expand(channels, 1, 1, SSIM_WINDOW)
    cols = g.view(1, 1, -1, 1).expand(channels, 1, SSIM_WINDOW, 1)

    def blur(x):  # 'valid' filtering: BasicSR filters with cv2 and crops 5 pixels, the same thing
        return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)

    mu1, mu2 = blur(sr), blur(gt)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = blur(sr * sr) - mu1_sq
    sigma2_sq = blur(gt * gt) - mu2_sq
    sigma12 = blur(sr * gt) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + SSIM_C1) * (2 * sigma12 + SSIM_C2)) / (
        (mu1_sq + mu2_sq + SSIM_C1) * (sigma1_sq + sigma2_sq + SSIM_C2))
    return ssim_map.flatten(1).mean(dim=1)

