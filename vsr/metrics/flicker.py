"""Temporal consistency ("flicker") of a clip, one value per pair of consecutive frames.

- `tof` (TecoGAN): how far the motion of the SR clip is from the motion of the GT clip:
  mean over pixels of `|OF(sr[t-1], sr[t]) - OF(gt[t-1], gt[t])|` (Euclidean, in pixels).
- `tlp` (TecoGAN): how far the perceptual change between SR frames is from that between
  GT frames: `|LPIPS(sr[t-1], sr[t]) - LPIPS(gt[t-1], gt[t])|`.
- `warp_error`: the previous frame warped onto the current one by optical flow, mean
  absolute difference in 8-bit levels over pixels that are visible in both (forward-backward
  consistency check, Sundaram et al. 2010) and stay inside the frame. Needs no GT, so it
  also scores videos that have no reference.
Frames are `(T, 3, H, W)` RGB, float in [0, 1] or uint8; results are `(T-1,)` float64.
"""

from collections.abc import Callable

import torch
from torch import nn

from vsr.metrics.fidelity import check_pair, to_levels
from vsr.metrics.flow import estimate_flow
from vsr.metrics.perceptual import lpips_distance
from vsr.ops import flow_warp

# Occlusion test of Sundaram et al.: |f + b(p + f)|^2 > ALPHA (|f|^2 + |b(p + f)|^2) + BETA
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5


def tof(sr: torch.Tensor, gt: torch.Tensor, method: str | Callable = "farneback") -> torch.Tensor:
    """Per-pair tOF in pixels of flow (TecoGAN uses Farneback flow)."""
    check_pair(sr, gt)
    if sr.shape[0] < 2:
        return torch.zeros(0, dtype=torch.float64)
    flow_sr = estimate_flow(sr[:-1], sr[1:], method).double()
    flow_gt = estimate_flow(gt[:-1], gt[1:], method).double()
    return (flow_sr - flow_gt).norm(dim=1).flatten(1).mean(dim=1).cpu()


def tlp(sr: torch.Tensor, gt: torch.Tensor, lpips_model: nn.Module, batch: int = 8) -> torch.Tensor:
    """Per-pair tLP in LPIPS units."""
    check_pair(sr, gt)
    if sr.shape[0] < 2:
        return torch.zeros(0, dtype=torch.float64)
    change_sr = lpips_distance(lpips_model, sr[:-1], sr[1:], batch)
    change_gt = lpips_distance(lpips_model, gt[:-1], gt[1:], batch)
    return (change_sr - change_gt).abs()


def visible_mask(flow: torch.Tensor, back_flow: torch.Tensor) -> torch.Tensor:
    """`(N, 1, H, W)` bool: pixels whose flow lands inside the frame and passes the
    forward-backward check. `flow` maps current -> previous, `back_flow` previous -> current."""
    _, _, h, w = flow.shape
    back_at_target = flow_warp(back_flow, flow, padding_mode="zeros")
    round_trip = (flow + back_at_target).pow(2).sum(1, keepdim=True)
    magnitude = flow.pow(2).sum(1, keepdim=True) + back_at_target.pow(2).sum(1, keepdim=True)
    consistent = round_trip <= OCCLUSION_ALPHA * magnitude + OCCLUSION_BETA
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device), torch.arange(w, device=flow.device), indexing="ij")
    tx, ty = xs + flow[:, 0:1], ys + flow[:, 1:2]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return consistent & inside


def warp_error(frames: torch.Tensor, method: str | Callable = "farneback") -> torch.Tensor:
    """Per-pair masked warping error in 8-bit levels (nan for a pair with no visible pixel)."""
    check_pair(frames, frames)
    if frames.shape[0] < 2:
        return torch.zeros(0, dtype=torch.float64)
    prev, cur = frames[:-1], frames[1:]
    flow = estimate_flow(cur, prev, method)       # cur[p] ≈ prev[p + flow]
    back_flow = estimate_flow(prev, cur, method)  # prev[q] ≈ cur[q + back_flow]
    mask = visible_mask(flow, back_flow).float()
    warped = flow_warp(to_levels(prev).float(), flow)
    diff = (warped - to_levels(cur).float()).abs().mean(dim=1, keepdim=True)
    return ((diff * mask).flatten(1).sum(1) / mask.flatten(1).sum(1)).double().cpu()
