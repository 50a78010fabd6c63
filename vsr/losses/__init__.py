"""Training losses on clips `(B, T, C, H, W)`: pixel, perceptual (VGG19, or texture and frequency terms
that need no download), adversarial, temporal."""

from vsr.losses.adversarial import GANLoss
from vsr.losses.perceptual import PerceptualLoss
from vsr.losses.pixel import PixelLoss
from vsr.losses.temporal import PingPongLoss, TemporalConsistencyLoss
from vsr.losses.texture import FrequencyLoss, TextureLoss

__all__ = ["PixelLoss", "PerceptualLoss", "GANLoss", "TemporalConsistencyLoss", "PingPongLoss",
           "TextureLoss", "FrequencyLoss"]
