"""Adversarial critics: a spectral-norm U-Net (Real-ESRGAN) and a spatio-temporal variant (TecoGAN)."""

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from vsr.errors import UserError


class UNetDiscriminatorSN(nn.Module):
    """Per-pixel real/fake logits from a U-Net whose convs are spectrally normalised.

    Three stride-2 downsamplings and bilinear upsamplings with skip connections, so H and W
    must be multiples of 8. Applied to each frame: `(B, T, 3, H, W)` -> `(B, T, 1, H, W)`.

    Args:
        num_in_ch: channels of one input (3 for RGB frames).
        num_feat: base channels.
        skip_connection: add encoder features to the decoder (U-Net).
    """

    frames_per_input = 1

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        sn = spectral_norm
        self.conv0 = nn.Conv2d(num_in_ch * self.frames_per_input, num_feat, 3, 1, 1)
        self.down = nn.ModuleList([
            sn(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False)),
            sn(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False)),
            sn(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False)),
        ])
        self.up = nn.ModuleList([
            sn(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False)),
            sn(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False)),
            sn(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False)),
        ])
        self.head = nn.Sequential(
            sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)), nn.LeakyReLU(0.2, inplace=True),
            sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False)), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(num_feat, 1, 3, 1, 1),
        )

    def stack_inputs(self, clip: torch.Tensor) -> torch.Tensor:
        return rearrange(clip, "b t c h w -> (b t) c h w")

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b = clip.shape[0]
        x = self.stack_inputs(clip)
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise UserError(f"discriminator input {tuple(x.shape[-2:])} must be a multiple of 8; "
                            "use a data.patch_size divisible by 8")
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), 0.2))
        x = skips.pop()
        for conv in self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.leaky_relu(conv(x), 0.2)
            skip = skips.pop()
            if self.skip_connection:
                x = x + skip
        return rearrange(self.head(x), "(b t) c h w -> b t c h w", b=b)


class SpatioTemporalDiscriminator(UNetDiscriminatorSN):
    """Judges three consecutive frames stacked along channels (TecoGAN), so it sees flicker.

    `(B, T, 3, H, W)` -> `(B, T-2, 1, H, W)`: one logit map per frame triplet.
    """

    frames_per_input = 3

    def stack_inputs(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.shape[1] < 3:
            raise UserError(f"discriminator=spatiotemporal needs clips of at least 3 frames, got "
                            f"{clip.shape[1]}; raise data.num_frames")
        triplets = torch.cat((clip[:, :-2], clip[:, 1:-1], clip[:, 2:]), dim=2)
        return rearrange(triplets, "b t c h w -> (b t) c h w")
