"""Small convolutional building blocks shared by the generators (ESRGAN naming)."""

import torch
from torch import nn

from vsr.errors import check_choice


def default_init(module: nn.Module, scale: float = 0.1) -> None:
    """Kaiming init scaled down (x0.1) so deep residual stacks start close to identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data *= scale
            if m.bias is not None:
                m.bias.data.zero_()


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (ESRGAN).

    Args:
        num_feat: channels in and out.
        num_grow_ch: channels each inner conv adds to the dense concatenation.
    """

    residual_scale = 0.2  # ESRGAN: scale the residual so 23-block stacks train stably

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        default_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + self.residual_scale * x5


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks inside a scaled residual."""

    residual_scale = 0.2

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scale * self.rdb3(self.rdb2(self.rdb1(x)))


class ResidualBlock(nn.Module):
    """conv-LeakyReLU-conv with an identity skip, no normalisation (BasicVSR's propagation block):
    ~1/10 the cost of an RRDB at the same width, for fast presets."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 0, negative_slope: float = 0.2):
        super().__init__()  # num_grow_ch: the same signature as RRDB; negative_slope=0: ReLU, as BasicVSR's blocks
        self.body = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.LeakyReLU(negative_slope, inplace=True),
                                  nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        default_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


BLOCKS = {"rrdb": RRDB, "residual": ResidualBlock}


class RRDBTrunk(nn.Module):
    """`num_block` RRDBs then a 3x3 conv, wrapped in a residual (ESRGAN's body + conv_body).
    `block="residual"`: residual blocks instead (plain 3x3 convs of `num_feat` channels in and
    out, which CPU convolution kernels run several times closer to their peak than the 8-16
    channel convolutions and concatenations of narrow dense blocks; experiments/benchmarks.md)."""

    def __init__(self, num_feat: int, num_block: int, num_grow_ch: int, block: str = "rrdb"):
        super().__init__()
        check_choice("model.trunk_block", block, tuple(BLOCKS))
        self.body = nn.Sequential(*(BLOCKS[block](num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_body(self.body(x))
