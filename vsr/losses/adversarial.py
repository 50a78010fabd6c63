"""Adversarial losses: vanilla (BCE), LSGAN and hinge, optionally relativistic (ESRGAN)."""

import torch
from torch import nn
from torch.nn import functional as F

from vsr.errors import check_choice


class GANLoss(nn.Module):
    """Generator and discriminator objectives from critic logits.

    Args:
        weight: weight of the generator's adversarial term.
        kind: "vanilla" (BCE with logits), "lsgan" (least squares) or "hinge".
        relativistic: ESRGAN's relativistic average critic: real vs mean fake and vice versa.
    """

    def __init__(self, weight: float = 0.1, kind: str = "vanilla", relativistic: bool = False):
        super().__init__()
        check_choice("loss.adversarial.kind", kind, ("vanilla", "lsgan", "hinge"))
        self.weight, self.kind, self.relativistic = weight, kind, relativistic

    def _target(self, logits: torch.Tensor, real: bool, for_discriminator: bool) -> torch.Tensor:
        if self.kind == "vanilla":
            target = torch.ones_like(logits) if real else torch.zeros_like(logits)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.kind == "lsgan":
            return ((logits - (1.0 if real else 0.0)) ** 2).mean()
        if for_discriminator:  # hinge
            return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()
        return -logits.mean() if real else logits.mean()

    def _relative(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b.mean() if self.relativistic else a

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted loss pushing the critic to call fakes real."""
        if self.relativistic:
            loss = (self._target(self._relative(fake_logits, real_logits), True, False)
                    + self._target(self._relative(real_logits, fake_logits), False, False)) / 2
        else:
            loss = self._target(fake_logits, True, False)
        return self.weight * loss

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Unweighted critic loss: real as real, fake as fake."""
        real = self._target(self._relative(real_logits, fake_logits), True, True)
        fake = self._target(self._relative(fake_logits, real_logits), False, True)
        return (real + fake) / 2
