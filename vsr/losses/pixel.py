"""Pixel losses: L1 and Charbonnier (a smooth L1 that VSR papers since BasicVSR use)."""

import torch
from torch import nn

from vsr.errors import check_choice


class PixelLoss(nn.Module):
    """Mean L1 or Charbonnier distance `sqrt(d^2 + eps^2)`, times `weight`."""

    def __init__(self, weight: float = 1.0, kind: str = "charbonnier", eps: float = 1e-6):
        super().__init__()
        check_choice("loss.pixel.kind", kind, ("l1", "charbonnier"))
        self.weight, self.kind, self.eps = weight, kind, eps

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        diff = sr - gt
        if self.kind == "l1":
            return self.weight * diff.abs().mean()
        # eps subtracted so identical inputs give exactly zero
        return self.weight * (torch.sqrt(diff * diff + self.eps**2) - self.eps).mean()
