"""The ESRGAN dense block re-expressed without concatenations, for runtimes that run it faster.

`ResidualDenseBlock`'s k-th convolution reads the concatenation of the block input and every
earlier output. Split its weights by input: each feature map, once computed, feeds all the later
convolutions through one wide convolution, and the partial sums are added. Same function, same
FLOPs (outputs equal up to float rounding); no concatenations, and wide outputs instead of narrow
ones. ncnn's Winograd kernels run `rrdb` models faster this way (experiments/benchmarks.md);
oneDNN / OpenVINO fuse the concatenated form better, so only the ncnn export uses it.
"""

import copy

import torch
from torch import nn
from torch.nn import functional as F

from vsr.models.blocks import ResidualDenseBlock


class SplitDenseBlock(nn.Module):
    """A trained `ResidualDenseBlock`, computed source by source."""

    def __init__(self, block: ResidualDenseBlock):
        super().__init__()
        convs = [block.conv1, block.conv2, block.conv3, block.conv4, block.conv5]
        num_feat, grow = block.conv1.in_channels, block.conv1.out_channels
        self.residual_scale, self.slope = block.residual_scale, block.lrelu.negative_slope
        self.sources = nn.ModuleList()
        self.widths: list[list[int]] = []  # output channels of each later conv fed by source j
        start = 0
        for j, width in enumerate([num_feat] + [grow] * 4):  # x, then x1 .. x4
            targets = convs[j:]
            conv = nn.Conv2d(width, sum(c.out_channels for c in targets), 3, 1, 1, bias=j == 0)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([c.weight[:, start:start + width] for c in targets]))
                if j == 0:  # every conv's bias, added once
                    biases = [c.bias for c in targets if c.bias is not None]
                    assert conv.bias is not None and len(biases) == len(targets)
                    conv.bias.copy_(torch.cat(biases))
            self.sources.append(conv)
            self.widths.append([c.out_channels for c in targets])
            start += width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = list(self.sources[0](x).split(self.widths[0], 1))  # partial inputs of conv1 .. conv5
        for source, widths in zip(self.sources[1:], self.widths[1:]):
            feature = F.leaky_relu(sums[0], self.slope)  # this conv's sum is complete: its output x_j
            sums = [s + part for s, part in zip(sums[1:], source(feature).split(widths, 1))]
        return x + self.residual_scale * sums[0]


def split_dense_blocks(model: nn.Module) -> nn.Module:
    """A copy of `model` with every `ResidualDenseBlock` replaced by its `SplitDenseBlock`."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ResidualDenseBlock):
                setattr(parent, name, SplitDenseBlock(child))
    return model
