"""Temporal-consistency losses: flow-warped frame differences and TecoGAN's ping-pong loss."""

import torch
from torch import nn

from vsr.errors import UserError
from vsr.ops import flow_warp


def require_frames(clip: torch.Tensor, minimum: int, option: str) -> None:
    if clip.shape[1] < minimum:
        raise UserError(f"{option} needs clips of at least {minimum} frames (got T={clip.shape[1]}); "
                        f"raise data.num_frames or set {option}.weight=0")


class TemporalConsistencyLoss(nn.Module):
    """Match SR's frame-to-frame change to GT's: `|(SR_t - W(SR_{t-1})) - (GT_t - W(GT_{t-1}))|`.

    `W` warps the previous frame onto the current one with optical flow estimated on the
    GT frames (OpenCV DIS, no gradient needed), so real motion is not penalised but flicker
    that GT does not have is. With `flow="none"` W is the identity (plain difference matching).
    """

    def __init__(self, weight: float = 1.0, flow: str = "dis"):
        super().__init__()
        self.weight, self.flow = weight, flow

    def _warp_previous(self, prev: torch.Tensor, flow: torch.Tensor | None) -> torch.Tensor:
        return prev if flow is None else flow_warp(prev, flow)

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        require_frames(sr, 2, "loss.temporal")
        cur_sr, prev_sr = sr[:, 1:].flatten(0, 1), sr[:, :-1].flatten(0, 1)
        cur_gt, prev_gt = gt[:, 1:].flatten(0, 1), gt[:, :-1].flatten(0, 1)
        flow = None
        if self.flow != "none":
            from vsr.metrics.flow import estimate_flow  # OpenCV; shared with the flicker metrics

            flow = estimate_flow(cur_gt, prev_gt, method=self.flow).to(sr)
        d_sr = cur_sr - self._warp_previous(prev_sr, flow)
        d_gt = cur_gt - self._warp_previous(prev_gt, flow)
        return self.weight * (d_sr - d_gt).abs().mean()


def pingpong_clip(lr: torch.Tensor) -> torch.Tensor:
    """x_0 .. x_{T-1} x_{T-2} .. x_0: the forward-backward sequence of TecoGAN."""
    return torch.cat((lr, lr[:, :-1].flip(1)), dim=1)


class PingPongLoss(nn.Module):
    """TecoGAN's ping-pong loss on the SR of `pingpong_clip(lr)`: each frame's SR in the
    forward half should equal its SR in the backward half, so drift and artefacts that
    accumulate in one direction are penalised."""

    def __init__(self, weight: float = 0.5):
        super().__init__()
        self.weight = weight

    def forward(self, sr_pingpong: torch.Tensor) -> torch.Tensor:
        require_frames(sr_pingpong, 3, "loss.pingpong")
        t = (sr_pingpong.shape[1] + 1) // 2
        forward_half = sr_pingpong[:, : t - 1]
        backward_half = sr_pingpong[:, t:].flip(1)
        return self.weight * (forward_half - backward_half).abs().mean()
