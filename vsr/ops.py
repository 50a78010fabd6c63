"""Tensor operations shared by models, losses and metrics (so metrics and losses need no model code)."""

import torch
from torch.nn import functional as F


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
