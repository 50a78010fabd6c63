"""BasicVSR (Chan et al., CVPR 2021) and BasicVSR++ (Chan et al., CVPR 2022), the field's reference
recurrent models, built from this package's parts: `SpyNet` flow, plain residual blocks, flow-guided
deformable alignment (`torchvision.ops.deform_conv2d`), pixel-shuffle reconstruction and the bilinear
skip. Parameter names follow the papers' released code (BasicSR), so its checkpoints load with the key
renaming of `vsr.models.convert_basicvsr`; outputs equal BasicSR's within 1e-4 (tests/test_basicvsr.py).
Both are x4 models on low-resolution input, as published.
"""

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from vsr.errors import UserError
from vsr.models.alignment import SpyNet, flow_warp
from vsr.models.blocks import ResidualBlock
from vsr.models.descriptor import ModelDescriptor

# export.py refuses graph formats for these models, in one line with this reason
NO_GRAPH_EXPORT = ("BasicVSR / BasicVSR++ graphs do not export yet (ONNX Runtime fails on the SPyNet pyramid's "
                   "dynamic sizes, DeformConv needs opset 19, a TorchScript trace misses the parity check)")


def check_x4(scale: int, name: str) -> None:
    if scale != 4:
        raise UserError(f"{name} is an x4 model (its reconstruction has two x2 pixel-shuffle stages); use scale=4")


class ResidualStack(nn.Module):
    """conv(in -> C) + LeakyReLU(0.1), then `num_block` residual blocks (conv-ReLU-conv): the papers'
    propagation and reconstruction trunks."""

    def __init__(self, num_in_ch: int, num_feat: int, num_block: int):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
                                  nn.Sequential(*(ResidualBlock(num_feat, negative_slope=0.0)
                                                  for _ in range(num_block))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class Reconstruction(nn.Module):
    """Features -> the x4 residual image: two x2 pixel-shuffle stages (to 64 channels), conv_hr, conv_last."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, 64 * 4, 3, 1, 1)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(F.pixel_shuffle(self.upconv1(x), 2), 0.1)
        x = F.leaky_relu(F.pixel_shuffle(self.upconv2(x), 2), 0.1)
        return self.conv_last(F.leaky_relu(self.conv_hr(x), 0.1))


def bilinear_x4(frame: torch.Tensor) -> torch.Tensor:
    return F.interpolate(frame, scale_factor=4, mode="bilinear", align_corners=False)


def pair_flows(spynet: SpyNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a clip `(B, T, 3, H, W)`: `to_next[:, i]`, the flow from frame i to i + 1 (it warps what was
    propagated from frame i + 1 onto frame i), and `to_previous[:, i]`, from frame i + 1 to i."""
    b, t, c, h, w = x.shape
    current, following = x[:, :-1].reshape(-1, c, h, w), x[:, 1:].reshape(-1, c, h, w)
    to_next = spynet(current, following).view(b, t - 1, 2, h, w)
    to_previous = spynet(following, current).view(b, t - 1, 2, h, w)
    return to_next, to_previous


class BasicVSR(nn.Module):
    """Bidirectional recurrent propagation with flow warping (BasicVSR): a backward pass over the clip,
    then a forward pass that fuses both directions' features per frame and reconstructs it.

    Args:
        num_feat: propagation channels (64 in the paper).
        num_block: residual blocks of each propagation trunk (30 in the paper).
        scale: 4 only.
        spynet_path: BasicSR's pretrained SPyNet (`spynet_sintel_final-3d2a1287.pth`), optional.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 30, scale: int = 4, spynet_path: str | None = None):
        super().__init__()
        check_x4(scale, "model=basicvsr")
        self.no_graph_export = NO_GRAPH_EXPORT
        self.num_feat, self.scale = num_feat, scale
        self.spynet = SpyNet(weights_path=spynet_path)
        self.backward_trunk = ResidualStack(num_feat + 3, num_feat, num_block)
        self.forward_trunk = ResidualStack(num_feat + 3, num_feat, num_block)
        self.fusion = nn.Conv2d(num_feat * 2, num_feat, 1)
        self.reconstruction = Reconstruction(num_feat)

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(scale=self.scale, temporal=True)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = lr
        b, t, _, h, w = x.shape
        to_next, to_previous = pair_flows(self.spynet, x) if t > 1 else (None, None)
        backward: list[torch.Tensor] = []  # filled from the last frame, then put in frame order
        state = x.new_zeros(b, self.num_feat, h, w)
        for i in reversed(range(t)):
            if to_next is not None and i < t - 1:
                state = flow_warp(state, to_next[:, i], padding_mode="zeros")
            state = self.backward_trunk(torch.cat((x[:, i], state), 1))
            backward.append(state)
        backward.reverse()
        outputs = []
        state = x.new_zeros(b, self.num_feat, h, w)
        for i in range(t):
            if to_previous is not None and i > 0:
                state = flow_warp(state, to_previous[:, i - 1], padding_mode="zeros")
            state = self.forward_trunk(torch.cat((x[:, i], state), 1))
            fused = F.leaky_relu(self.fusion(torch.cat((backward[i], state), 1)), 0.1)
            outputs.append(self.reconstruction(fused) + bilinear_x4(x[:, i]))
        return torch.stack(outputs, 1)


class SecondOrderDeformableAlignment(nn.Module):
    """Flow-guided deformable alignment (BasicVSR++): a modulated deformable 3x3 convolution over the
    features carried from the last two frames, its offsets the two flows plus bounded residues (and its
    masks) predicted from the flow-warped features, the current frame's features and the flows."""

    def __init__(self, num_feat: int, groups: int = 16, max_residue_magnitude: float = 10.0):
        super().__init__()
        self.groups, self.max_residue_magnitude = groups, max_residue_magnitude
        self.weight = nn.Parameter(torch.empty(num_feat, 2 * num_feat, 3, 3))
        self.bias = nn.Parameter(torch.zeros(num_feat))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * num_feat + 4, num_feat, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(num_feat, 27 * groups, 3, 1, 1))
        last = self.conv_offset[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.zeros_(last.weight)  # start as plain flow warping
        nn.init.zeros_(last.bias)

    def forward(self, carried: torch.Tensor, condition: torch.Tensor, flow_1: torch.Tensor,
                flow_2: torch.Tensor) -> torch.Tensor:
        o1, o2, mask = self.conv_offset(torch.cat((condition, flow_1, flow_2), 1)).chunk(3, 1)
        residue_1, residue_2 = (self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), 1))).chunk(2, 1)
        # deform_conv2d's offsets are (dy, dx) pairs per kernel tap and group; flows are (dx, dy)
        offset_1 = residue_1 + flow_1.flip(1).repeat(1, residue_1.shape[1] // 2, 1, 1)
        offset_2 = residue_2 + flow_2.flip(1).repeat(1, residue_2.shape[1] // 2, 1, 1)
        return torchvision.ops.deform_conv2d(carried, torch.cat((offset_1, offset_2), 1), self.weight, self.bias,
                                             padding=(1, 1), mask=torch.sigmoid(mask))


BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")


class BasicVSRPlusPlus(nn.Module):
    """Second-order grid propagation with flow-guided deformable alignment (BasicVSR++): four passes
    (backward, forward, backward, forward), each reading every earlier pass's features of the frame and
    the features carried from the last two frames, aligned by `SecondOrderDeformableAlignment`.

    Args:
        num_feat: channels (64 in the paper).
        num_block: residual blocks of each propagation pass (7 in the paper).
        scale: 4 only.
        max_residue_magnitude: bound of the learned offsets around the flow, in pixels.
        spynet_path: BasicSR's pretrained SPyNet, optional.
    """

    def __init__(self, num_feat: int = 64, num_block: int = 7, scale: int = 4, max_residue_magnitude: float = 10.0,
                 spynet_path: str | None = None):
        super().__init__()
        check_x4(scale, "model=basicvsr_pp")
        self.no_graph_export = NO_GRAPH_EXPORT
        self.num_feat, self.scale = num_feat, scale
        self.spynet = SpyNet(weights_path=spynet_path)
        self.feat_extract = ResidualStack(3, num_feat, 5)
        self.deform_align = nn.ModuleDict({name: SecondOrderDeformableAlignment(num_feat, 16, max_residue_magnitude)
                                           for name in BRANCHES})
        self.backbone = nn.ModuleDict({name: ResidualStack((2 + i) * num_feat, num_feat, num_block)
                                       for i, name in enumerate(BRANCHES)})
        self.reconstruction_trunk = ResidualStack(5 * num_feat, num_feat, 5)
        self.reconstruction = Reconstruction(num_feat)

    def propagate(self, feats: dict[str, list[torch.Tensor]], flows: torch.Tensor, name: str) -> list[torch.Tensor]:
        """One pass in time order ("forward") or reverse: each frame's new features from its spatial
        features, the earlier passes' and the aligned features of the last two frames of this pass."""
        t = len(feats["spatial"])
        order = list(range(t))[::-1] if name.startswith("backward") else list(range(t))
        # the flow from frame order[i] to order[i-1]: to_next[idx] going backward, to_previous[idx-1] forward
        flow_index = order if name.startswith("backward") else [i - 1 for i in order]
        earlier = [k for k in feats if k != "spatial"]
        carried = flows.new_zeros(flows.shape[0], self.num_feat, *flows.shape[-2:])
        out: list[torch.Tensor] = []
        for i, idx in enumerate(order):
            current = feats["spatial"][idx]
            if i > 0:
                flow_1 = flows[:, flow_index[i]]
                aligned_1 = flow_warp(carried, flow_1, padding_mode="zeros")
                older, flow_2, aligned_2 = torch.zeros_like(carried), torch.zeros_like(flow_1), torch.zeros_like(carried)
                if i > 1:  # second order: the frame before last, through the composed flow
                    older = out[-2]
                    flow_2 = flow_1 + flow_warp(flows[:, flow_index[i - 1]], flow_1, padding_mode="zeros")
                    aligned_2 = flow_warp(older, flow_2, padding_mode="zeros")
                carried = self.deform_align[name](torch.cat((carried, older), 1),
                                                  torch.cat((aligned_1, current, aligned_2), 1), flow_1, flow_2)
            inputs = [current, *(feats[k][idx] for k in earlier), carried]
            carried = carried + self.backbone[name](torch.cat(inputs, 1))
            out.append(carried)
        return out[::-1] if name.startswith("backward") else out

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(scale=self.scale, temporal=True)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = lr
        b, t, c, h, w = x.shape
        spatial = self.feat_extract(x.reshape(-1, c, h, w)).view(b, t, -1, h, w)
        feats: dict[str, list[torch.Tensor]] = {"spatial": list(spatial.unbind(1))}
        if t > 1:
            to_next, to_previous = pair_flows(self.spynet, x)
        else:  # one frame: nothing to propagate (flows are never read)
            to_next = to_previous = x.new_zeros(b, 0, 2, h, w)
        for name in BRANCHES:
            feats[name] = self.propagate(feats, to_next if name.startswith("backward") else to_previous, name)
        outputs = []
        for i in range(t):
            fused = self.reconstruction_trunk(torch.cat([feats[k][i] for k in ("spatial", *BRANCHES)], 1))
            outputs.append(self.reconstruction(fused) + bilinear_x4(x[:, i]))
        return torch.stack(outputs, 1)
