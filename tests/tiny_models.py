"""Tiny generators for tests."""

import torch
from torch import nn

from vsr.models.build import build_generator


def tiny(config: dict, seed: int = 0) -> nn.Module:
    """A small generator with non-trivial random weights (default init is near-identity)."""
    torch.manual_seed(seed)
    model = build_generator(dict(config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()
