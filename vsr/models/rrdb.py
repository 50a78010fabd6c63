"""Single-frame ESRGAN-style RRDB network: the baseline that shows what temporal propagation buys."""

from typing import cast

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from vsr.errors import check_choice
from vsr.models.bicubic import BicubicUpsample, bicubic_upsample
from vsr.models.blocks import RRDBTrunk, default_init
from vsr.models.descriptor import ModelDescriptor
from vsr.models.upsample import LowResPixelShuffleUpsampler, NearestConvUpsampler, PixelShuffleUpsampler

UPSAMPLERS = {"pixelshuffle": PixelShuffleUpsampler, "pixelshuffle_lr": LowResPixelShuffleUpsampler,
              "nearest_conv": NearestConvUpsampler}


def upsample_frames(lr: torch.Tensor, scale: int, mode: str = "bicubic") -> torch.Tensor:
    """Interpolate frames `(N, C, H, W)` by `scale`: the global skip and the bicubic baseline.
    Bicubic by an integer factor runs as a low-resolution convolution (same values, much faster
    in ONNX runtimes; `vsr.models.bicubic`)."""
    if mode == "bicubic" and float(scale).is_integer():
        return bicubic_upsample(lr, int(scale))
    align = None if mode == "nearest" else False
    return F.interpolate(lr, scale_factor=scale, mode=mode, align_corners=align)


class RRDBNet(nn.Module):
    """ESRGAN generator applied to each frame of a clip on its own.

    With `upsampler="nearest_conv"` and `global_skip=False` its parameters are those of
    BasicSR / Real-ESRGAN `RRDBNet` (see `vsr.models.convert`), x2 included: like
    Real-ESRGAN it pixel-unshuffles x2 input and upsamples x4.

    Args:
        scale: 2, 3, 4 or 8.
        num_feat: trunk channels.
        num_block: RRDBs in the trunk.
        num_grow_ch: growth channels of the dense blocks.
        upsampler: "pixelshuffle" (sub-pixel conv, convs at high resolution), "pixelshuffle_lr"
            (one conv at low resolution + PixelShuffle: fast) or "nearest_conv" (ESRGAN).
        global_skip: add the bicubically upsampled frame to the output.
        trunk_block: "rrdb" (ESRGAN) or "residual" (conv-conv blocks: plain wide convolutions, fast on CPUs).
    Shape: `(B, T, 3, H, W)` -> `(B, T, 3, scale*H, scale*W)`.
    """

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32,
                 upsampler: str = "pixelshuffle", global_skip: bool = True, num_in_ch: int = 3,
                 trunk_block: str = "rrdb"):
        super().__init__()
        check_choice("model.upsampler", upsampler, tuple(UPSAMPLERS))
        self.scale = scale
        self.global_skip = global_skip
        # Real-ESRGAN x2 layout: fold 2x2 pixels into channels, then upsample x4.
        self.unshuffle = 2 if (upsampler == "nearest_conv" and scale == 2) else 1
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.trunk = RRDBTrunk(num_feat, num_block, num_grow_ch, trunk_block)
        self.upsampler = UPSAMPLERS[upsampler](num_feat, scale * self.unshuffle, num_in_ch)
        if global_skip:
            default_init(self.upsampler)
            self.skip = BicubicUpsample(scale, num_in_ch)

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(scale=self.scale, temporal=False, size_multiple=self.unshuffle)

    @property
    def splits_skip(self) -> bool:
        """Whether the output is `add_skip(lr_residual(x), x)`: a low-resolution residual, then the
        image's bicubic phases added and shuffled once (a runtime may compute the first part alone)."""
        return self.global_skip and isinstance(self.upsampler, LowResPixelShuffleUpsampler)

    def lr_residual(self, x: torch.Tensor) -> torch.Tensor:
        """Frames `(N, 3, H, W)` -> the network's part of the output before the PixelShuffle, `(N, 3s^2, H, W)`."""
        conv, _ = cast(LowResPixelShuffleUpsampler, self.upsampler)
        return conv(self.trunk(self.conv_first(x)))

    def add_skip(self, residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """`lr_residual(x)` -> the output frames, the bicubic skip added in fp32 (the image itself is not
        rounded to bf16) before one PixelShuffle instead of two."""
        with torch.autocast(x.device.type, enabled=False):
            return cast(LowResPixelShuffleUpsampler, self.upsampler)[1](residual.float() + self.skip.phases(x.float()))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        b = lr.shape[0]
        x = rearrange(lr, "b t c h w -> (b t) c h w")
        if self.splits_skip:
            out = self.add_skip(self.lr_residual(x), x)
        else:
            feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
            out = self.upsampler(self.trunk(self.conv_first(feat)))
            if self.global_skip:
                with torch.autocast(x.device.type, enabled=False):
                    out = out.float() + self.skip(x.float())
        return rearrange(out, "(b t) c h w -> b t c h w", b=b)
