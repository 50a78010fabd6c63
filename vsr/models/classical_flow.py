"""Classical optical-flow frame interpolation (no training): the `flow` baseline of
`vsr.interpolation`, and the start that `IFNetLite(flow_init=...)` corrects."""

import torch

from vsr.errors import check_choice
from vsr.ops import OPENCV_FLOW_METHODS as FLOW_METHODS
from vsr.ops import flow_warp, opencv_flow, to_grey

FARNEBACK_LEVELS = 5  # pyramid levels: frames to interpolate between move more than a metric's neighbours


def consistent(flow_ab: torch.Tensor, flow_ba: torch.Tensor, tol: float = 1.0) -> torch.Tensor:
    """`(N, 1, H, W)` 1 where a pixel of a, moved by flow_ab and back by flow_ba, lands within
    `tol` (+5% of the motion) of where it started: visible in both frames (not occluded)."""
    back = flow_warp(flow_ba, flow_ab)
    error = (flow_ab + back).norm(dim=1, keepdim=True)
    motion = flow_ab.norm(dim=1, keepdim=True) + back.norm(dim=1, keepdim=True)
    return (error <= tol + 0.05 * motion).float()


class ClassicalFlow:
    """Classical flow interpolation: OpenCV flow both ways (DIS or Farneback), intermediate backward
    flows by the linear-motion approximation of Super SloMo (Jiang et al. 2018),
    `F_t0 = -(1-t) t F_01 + t^2 F_10`, `F_t1 = (1-t)^2 F_01 - t (1-t) F_10`, backward warping of
    both frames, and an occlusion-aware blend: each frame is weighted by its temporal closeness
    times its forward-backward consistency at the sampled position (linear blend where neither is).
    """

    def __init__(self, method: str = "dis"):
        check_choice("flow", method, FLOW_METHODS)
        self.method = method

    def flows(self, frame0: torch.Tensor, frame1: torch.Tensor, t=0.5):
        """`(F_t0, F_t1, weight0)`: intermediate backward flows `(B, 2, H, W)` each and the
        occlusion-aware weight `(B, 1, H, W)` of frame 0 (1 - weight0 for frame 1)."""
        flows01, flows10 = [], []
        for ga, gb in zip(to_grey(frame0), to_grey(frame1)):
            flows01.append(torch.from_numpy(opencv_flow(ga, gb, self.method, FARNEBACK_LEVELS)).permute(2, 0, 1))
            flows10.append(torch.from_numpy(opencv_flow(gb, ga, self.method, FARNEBACK_LEVELS)).permute(2, 0, 1))
        f01 = torch.stack(flows01).to(frame0)
        f10 = torch.stack(flows10).to(frame0)
        t = torch.as_tensor(t, dtype=frame0.dtype, device=frame0.device).reshape(-1, 1, 1, 1)
        ft0 = -(1 - t) * t * f01 + t * t * f10
        ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
        w0 = (1 - t) * flow_warp(consistent(f01, f10), ft0)
        w1 = t * flow_warp(consistent(f10, f01), ft1)
        total = w0 + w1
        weight0 = torch.where(total > 1e-3, w0 / total.clamp_min(1e-3), (1 - t).expand_as(w0))
        return ft0, ft1, weight0

    def __call__(self, frame0: torch.Tensor, frame1: torch.Tensor, t=0.5) -> torch.Tensor:
        ft0, ft1, weight0 = self.flows(frame0, frame1, t)
        return (weight0 * flow_warp(frame0, ft0) + (1 - weight0) * flow_warp(frame1, ft1)).clamp(0, 1)
