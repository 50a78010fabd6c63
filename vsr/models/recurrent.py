"""Bidirectional recurrent RRDB generator: hidden features carried backward then forward in time."""

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from vsr.errors import check_choice
from vsr.models.alignment import SpyNet, flow_warp
from vsr.models.bicubic import BicubicUpsample
from vsr.models.blocks import BLOCKS, RRDBTrunk, default_init
from vsr.models.descriptor import ModelDescriptor
from vsr.models.rrdb import UPSAMPLERS


class PropagationBranch(nn.Module):
    """Fuse the current frame's features with the carried hidden state: conv + `num_block` blocks."""

    def __init__(self, num_in: int, num_feat: int, num_block: int, num_grow_ch: int, block: str = "rrdb"):
        super().__init__()
        self.num_feat = num_feat
        self.fuse = nn.Sequential(nn.Conv2d(num_in, num_feat, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        self.blocks = nn.Sequential(*(BLOCKS[block](num_feat, num_grow_ch) for _ in range(num_block)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.fuse(x))


class RecurrentRRDBNet(nn.Module):
    """Video SR generator (BasicVSR-style propagation with an RRDB trunk).

    Per frame: shallow features; a backward pass over time and then a forward pass, each
    carrying hidden features from the neighbouring frame, aligned to the current one
    (`alignment="flow"`: warped by a jointly learned SpyNet flow; `"none"`: implicit);
    the forward state goes through the RRDB trunk and a sub-pixel upsampler, added to the
    bicubically upsampled LR frame (global skip).

    Args:
        scale: 2, 3, 4 or 8.
        num_feat: feature channels everywhere.
        num_block: blocks in the reconstruction trunk (RRDBs, or residual blocks with `trunk_block="residual"`).
        num_block_prop: blocks in each propagation branch.
        num_grow_ch: growth channels of the dense blocks.
        prop_block: "rrdb" or "residual" (conv-conv, ~10x cheaper) in the propagation branches.
        alignment: "flow" or "none".
        flow_levels, flow_channels: size of the SpyNet (6 and (32, 64, 32, 16) load BasicSR weights).
        flow_downscale: estimate flow on frames shrunk by this factor (2: 1/4 of the cost).
        spynet_path: optional local file of pretrained SpyNet weights.
        upsampler: "pixelshuffle" (default), "pixelshuffle_lr" (fast) or "nearest_conv".
        trunk_block: "rrdb" or "residual" in the reconstruction trunk.
    Shape: `(B, T, 3, H, W)` -> `(B, T, 3, scale*H, scale*W)`.
    """

    def __init__(self, scale: int = 4, num_feat: int = 64, num_block: int = 10, num_block_prop: int = 2,
                 num_grow_ch: int = 32, alignment: str = "flow", flow_levels: int = 6,
                 flow_channels: tuple[int, ...] = (32, 64, 32, 16), spynet_path: str | None = None,
                 upsampler: str = "pixelshuffle", prop_block: str = "rrdb", flow_downscale: int = 1,
                 trunk_block: str = "rrdb"):
        super().__init__()
        check_choice("model.alignment", alignment, ("flow", "none"))
        check_choice("model.prop_block", prop_block, tuple(BLOCKS))
        check_choice("model.upsampler", upsampler, tuple(UPSAMPLERS))
        self.scale = scale
        self.flow_downscale = flow_downscale
        self.feat_extract = nn.Sequential(nn.Conv2d(3, num_feat, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        self.spynet = SpyNet(flow_levels, tuple(flow_channels), spynet_path) if alignment == "flow" else None
        self.backward_branch = PropagationBranch(2 * num_feat, num_feat, num_block_prop, num_grow_ch, prop_block)
        self.forward_branch = PropagationBranch(3 * num_feat, num_feat, num_block_prop, num_grow_ch, prop_block)
        self.trunk = RRDBTrunk(num_feat, num_block, num_grow_ch, trunk_block)
        self.upsampler = UPSAMPLERS[upsampler](num_feat, scale, 3)
        default_init(self.upsampler)  # start close to the bicubic skip
        self.skip = BicubicUpsample(scale)

    def compute_flows(self, lr: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Flows between neighbours, `(B, T-1, 2, H, W)`: frame i -> i+1 (backward pass) and i+1 -> i."""
        if self.spynet is None or lr.shape[1] < 2:
            return None, None
        with torch.autocast(lr.device.type, enabled=False):  # fp32 under bf16/fp16: flow errors move whole edges
            return self._flows(lr.float())

    def _flows(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.spynet is not None  # compute_flows checked
        b, t, _, h, w = lr.shape
        frames = lr.flatten(0, 1)
        if self.flow_downscale > 1:
            frames = F.avg_pool2d(frames, self.flow_downscale, ceil_mode=True)
        frames = frames.unflatten(0, (b, t))
        prev, nxt = frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)
        flows = self.spynet(torch.cat((prev, nxt)), torch.cat((nxt, prev)))  # one batched call
        if self.flow_downscale > 1:  # back to full size, displacements in full-size pixels
            flows = F.interpolate(flows, size=(h, w), mode="bilinear", align_corners=False) * self.flow_downscale
        to_next, to_prev = flows.unflatten(0, (2, b, t - 1))
        return to_next, to_prev

    def align(self, hidden: torch.Tensor, flow: torch.Tensor | None) -> torch.Tensor:
        return hidden if flow is None else flow_warp(hidden, flow)

    def propagate(self, lr: torch.Tensor) -> Iterator[torch.Tensor]:
        """The forward pass's hidden state of each frame in turn, `(B, C, H, W)` (after the whole
        backward pass). Frames' features are computed where needed rather than kept for the clip:
        at 1080p a 32-channel map is 265 MB a frame."""
        b, t, c, h, w = lr.shape
        to_next, to_prev = self.compute_flows(lr)
        backward_states: list[torch.Tensor] = []  # from the last frame to the first
        hidden = lr.new_zeros(b, self.backward_branch.num_feat, h, w)
        for i in reversed(range(t)):
            if i < t - 1:
                hidden = self.align(hidden, None if to_next is None else to_next[:, i])
            hidden = self.backward_branch(torch.cat((self.feat_extract(lr[:, i]), hidden), 1))
            backward_states.append(hidden)
        hidden = torch.zeros_like(hidden)
        for i in range(t):
            if i > 0:
                hidden = self.align(hidden, None if to_prev is None else to_prev[:, i - 1])
            backward = backward_states.pop()  # frame i's; used once: the list lets it go
            hidden = self.forward_branch(torch.cat((self.feat_extract(lr[:, i]), backward, hidden), 1))
            del backward
            yield hidden

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(scale=self.scale, temporal=True, partial_reconstruction=True)

    def reconstruct(self, hidden: torch.Tensor, lr_frame: torch.Tensor) -> torch.Tensor:
        """One frame's output from its hidden state: RRDB trunk, upsampler, bicubic skip. Local (a
        receptive radius of about 15 LR pixels per trunk block), so it can run tile by tile."""
        residual = self.upsampler(self.trunk(hidden))
        with torch.autocast(lr_frame.device.type, enabled=False):  # bf16 rounding of the image itself costs PSNR (experiments/benchmarks.md)
            return residual.float() + self.skip(lr_frame.float())

    def kept_states(self, lr: torch.Tensor, keep: slice = slice(None)) -> Iterator[tuple[int, torch.Tensor]]:
        """`(index, forward hidden state)` of the frames `keep` (a window's kept frames; the others are
        context, whose reconstruction, 55% of a frame's cost in the default preset, is skipped by
        `vsr.inference.tiling.run_tiled_recurrent`), in order. The forward pass stops after the last
        kept frame: frames after it only feed the backward pass."""
        frames = range(lr.shape[1])[keep]
        if not frames:
            return
        for i, hidden in enumerate(self.propagate(lr)):
            if i in frames:
                yield i, hidden
            if i >= max(frames):
                return

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        outputs = [self.reconstruct(hidden, lr[:, i]) for i, hidden in enumerate(self.propagate(lr))]
        return torch.stack(outputs, dim=1)
