"""Tensor operations shared by models, losses and metrics (so metrics and losses need no model code)."""

import numpy as np
import torch
from torch.nn import functional as F

# ITU-R BT.601 luma weights of R, G, B (Kr, Kg, Kb): the metrics' Y, the encoder's YCbCr and grey frames.
BT601_LUMA = (0.299, 0.587, 0.114)
# Studio range: Y in [16, 235], 219 levels for RGB in [0, 1] (BasicSR's 65.481, 128.553, 24.966).
STUDIO_Y_WEIGHTS = tuple(219 * k for k in BT601_LUMA)
STUDIO_Y_OFFSET = 16.0


def flow_warp(x: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Sample `x` `(N, C, H, W)` at each pixel displaced by `flow` `(N, 2, H, W)` (x, y in pixels)."""
    n, _, h, w = x.shape
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    px = gx + flow[:, 0]
    py = gy + flow[:, 1]
    # grid_sample wants coordinates in [-1, 1] (align_corners=True: -1 and 1 are pixel centres).
    grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)



def gaussian_1d(size: int, sigma: float, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """The normalised `size`-tap Gaussian centred on the middle tap (cv2.getGaussianKernel for odd sizes)."""
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()

# TecoGAN metrics.py: calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def to_grey(frames: torch.Tensor) -> np.ndarray:
    """`(N, 3, H, W)` RGB, float in [0, 1] or uint8 -> `(N, H, W)` uint8 grey (BT.601 luma, OpenCV)."""
    import cv2

    if frames.dtype != torch.uint8:
        frames = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = frames.permute(0, 2, 3, 1).cpu().numpy()
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in rgb])


OPENCV_FLOW_METHODS = ("dis", "farneback")


def opencv_flow(a: np.ndarray, b: np.ndarray, method: str = "dis", levels: int = 3) -> np.ndarray:
    """Dense flow `(H, W, 2)` float32 from grey uint8 `a` to `b` (a pixel of a + its flow = its position
    in b): OpenCV's DIS (medium preset), or Farneback with TecoGAN's parameters and `levels` pyramid levels
    (3 as TecoGAN's tOF; more follow larger motion)."""
    import cv2

    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)
    return cv2.calcOpticalFlowFarneback(a, b, None, **{**FARNEBACK_PARAMS, "levels": levels})
