"""Optical flow from OpenCV (no weights needed): Farneback, as TecoGAN's tOF uses, or DIS.

Not differentiable: use it for metrics and for flow targets of a temporal loss, not
inside a network. Frames go to grey uint8 on the CPU; the flow comes back on the
frames' device.
"""

import cv2
import numpy as np
import torch

from vsr.errors import check_choice

FLOW_METHODS = ("farneback", "dis")

# TecoGAN metrics.py: calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def to_grey(frames: torch.Tensor) -> np.ndarray:
    """`(N, 3, H, W)` RGB, float in [0, 1] or uint8 -> `(N, H, W)` uint8 grey (BT.601 luma, OpenCV)."""
    if frames.dtype != torch.uint8:
        frames = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = frames.permute(0, 2, 3, 1).cpu().numpy()
    return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in rgb])


def _flow_one(prev: np.ndarray, nxt: np.ndarray, method: str) -> np.ndarray:
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(prev, nxt, None, **FARNEBACK_PARAMS)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(prev, nxt, None)


def estimate_flow(prev: torch.Tensor, next: torch.Tensor, method: str = "farneback") -> torch.Tensor:  # noqa: A002
    """Dense flow between frame pairs, OpenCV's convention.

    Args:
        prev, next: frames `(N, 3, H, W)` or one frame `(3, H, W)`, RGB float in [0, 1] or uint8.
        method: "farneback" or "dis".
    Returns:
        flow `(N, 2, H, W)` (or `(2, H, W)`) float32 in pixels, x then y, such that
        `prev[y, x] ≈ next[y + flow_y, x + flow_x]`: `vsr.models.alignment.flow_warp(next, flow)`
        rebuilds `prev`.
    """
    check_choice("flow method", method, FLOW_METHODS)
    single = prev.ndim == 3
    if single:
        prev, next = prev[None], next[None]
    if prev.shape != next.shape:
        raise ValueError(f"flow needs frames of one size; got {tuple(prev.shape)} and {tuple(next.shape)}")
    a, b = to_grey(prev), to_grey(next)
    flows = np.stack([_flow_one(p, n, method) for p, n in zip(a, b)])
    flow = torch.from_numpy(flows).permute(0, 3, 1, 2).to(prev.device)
    return flow[0] if single else flow
