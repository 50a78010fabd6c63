"""Training losses on clips `(B, T, C, H, W)`: pixel, perceptual, adversarial, temporal."""

from vsr.losses.adversarial import GANLoss
from vsr.losses.perceptual import PerceptualLoss
from vsr.losses.pixel import PixelLoss
from vsr.losses.temporal import PingPongLoss, TemporalConsistencyLoss

__all__ = ["PixelLoss", "PerceptualLoss", "GANLoss", "TemporalConsistencyLoss", "PingPongLoss"]
