"""Interpolation baselines with no training: frame repetition, linear blend, classical optical flow.

Every interpolator here (and the learned `vsr.models.interp.IFNetLite`) is a callable
`(frame0, frame1, t) -> frame` on `(B, 3, H, W)` float RGB in [0, 1], `t` in (0, 1).
"""

import torch

from vsr.errors import check_choice
from vsr.models.classical_flow import ClassicalFlow

BASELINES = ("repeat", "blend", "flow")


def repeat(frame0: torch.Tensor, frame1: torch.Tensor, t=0.5) -> torch.Tensor:
    """Frame repetition: the earlier frame is held (what a player does without interpolation)."""
    return frame0.clone()


def blend(frame0: torch.Tensor, frame1: torch.Tensor, t=0.5) -> torch.Tensor:
    """Linear cross-fade `(1 - t) * frame0 + t * frame1`."""
    t = torch.as_tensor(t, dtype=frame0.dtype, device=frame0.device).reshape(-1, 1, 1, 1)
    return (1 - t) * frame0 + t * frame1


def build_baseline(name: str):
    """`repeat`, `blend` or `flow` (classical DIS flow) as an interpolator callable."""
    check_choice("baseline", name, BASELINES)
    return {"repeat": repeat, "blend": blend, "flow": ClassicalFlow("dis")}[name]
