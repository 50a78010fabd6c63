"""Perceptual signals that need no download (no ImageNet weights can be fetched here).

- `TextureLoss`: distance between Gram matrices (texture statistics) of SR and GT features from
  fixed random multi-scale filters; random filters carry texture statistics well enough to
  synthesise natural textures (Ustyuzhaninov et al. 2017), which is all a Gram term asks of them.
  Written here: no library offers a random-feature Gram loss.
- `FrequencyLoss`: the focal frequency loss (Jiang et al. 2021, the authors' package), which
  weights the spectrum errors a PSNR model leaves (the high frequencies) most.

Both take clips `(B, T, 3, H, W)` in [0, 1], like every loss of vsr.losses.
"""

import torch
from einops import rearrange
from focal_frequency_loss import FocalFrequencyLoss
from torch import nn
from torch.nn import functional as F

KERNEL_SIZES = (3, 5)
OCTAVES = 2  # the filters also run on the 2x-pooled frames: larger scales at a quarter of the cost


class TextureLoss(nn.Module):
    """L1 between Gram matrices of random-filter features of SR and GT frames, times `weight`.

    Args:
        weight: overall weight of the term.
        filters: random filters per kernel size (KERNEL_SIZES), each run at OCTAVES scales.
        seed: the filters are drawn from it, so every run (and a resumed one) has the same ones.
    """

    def __init__(self, weight: float = 1.0, filters: int = 32, seed: int = 0):
        super().__init__()
        self.weight = weight
        generator = torch.Generator().manual_seed(seed)
        for size in KERNEL_SIZES:
            bank = torch.randn(filters, 3, size, size, generator=generator)
            bank -= bank.mean(dim=(1, 2, 3), keepdim=True)  # no response to flat colour: texture only
            bank /= bank.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            self.register_buffer(f"bank{size}", bank, persistent=False)  # rebuilt from the seed

    def _grams(self, frames: torch.Tensor) -> list[torch.Tensor]:
        grams = []
        for octave in range(OCTAVES):
            if octave:
                frames = F.avg_pool2d(frames, 2)
            for size in KERNEL_SIZES:
                features = F.relu(F.conv2d(frames, getattr(self, f"bank{size}"), padding=size // 2)).flatten(2)
                grams.append(features @ features.transpose(1, 2) / features.shape[-1])
        return grams

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        sr_grams = self._grams(rearrange(sr, "b t c h w -> (b t) c h w"))
        with torch.no_grad():
            gt_grams = self._grams(rearrange(gt, "b t c h w -> (b t) c h w"))
        return self.weight * sum((s - g).abs().mean() for s, g in zip(sr_grams, gt_grams))


class FrequencyLoss(nn.Module):
    """Focal frequency loss of SR against GT frames, times `weight` (alpha: how much the
    largest spectrum errors dominate)."""

    def __init__(self, weight: float = 1.0, alpha: float = 1.0):
        super().__init__()
        self.weight = weight
        self.focal = FocalFrequencyLoss(loss_weight=1.0, alpha=alpha)

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        flat = "b t c h w -> (b t) c h w"
        return self.weight * self.focal(rearrange(sr, flat), rearrange(gt, flat))
