"""Frame interpolation: IFNet-style coarse-to-fine intermediate flows, warp, mask fusion, refinement.

In the spirit of RIFE (Huang et al., ECCV 2022): instead of estimating flow between the two
input frames and then guessing where pixels sit at time t, each block directly predicts the
*intermediate* flows F_t->0 and F_t->1 (where to sample frame 0 and frame 1 for each pixel of
the new frame) and a fusion mask. Blocks run coarse to fine and refine the previous estimate.
The warped neighbours are fused with the mask and a small refinement net adds a residual.

The last layer of every head is zero-initialised, so an untrained model predicts zero flow,
mask 0.5 and no residual: exactly the linear blend. Training only has to improve on it.

With `flow_init="dis"` the blocks start from classical optical flow instead of zero: OpenCV DIS
flow both ways turned into intermediate flows and an occlusion-aware mask
(`vsr.models.classical_flow.ClassicalFlow`), which the learned blocks then correct (flows,
mask) and the refinement net completes. Untrained, that model is exactly the classical
interpolation; the DIS step runs on the CPU and is not differentiable (nothing flows back into it).
"""

import torch
from torch import nn
from torch.nn import functional as F

from vsr.models.alignment import flow_warp
from vsr.models.descriptor import ModelDescriptor


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.PReLU(c_out))


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class IFBlock(nn.Module):
    """One coarse-to-fine step: looks at its input at 1/`scale` resolution (then 1/4 of that inside)
    and returns a flow update `(B, 4, H, W)` (t->0 and t->1, pixels) and a mask-logit update `(B, 1, H, W)`.

    Args:
        c_in: input channels (frames, warped frames, time map, current flow and mask).
        num_feat: feature channels; num_conv: residual 3x3 convs at 1/(4*scale) resolution.
        scale: resolution divisor of this block (4 = coarsest).
    """

    def __init__(self, c_in: int, num_feat: int, num_conv: int, scale: int):
        super().__init__()
        self.scale = scale
        self.down = nn.Sequential(conv(c_in, num_feat // 2, 2), conv(num_feat // 2, num_feat, 2))
        self.body = nn.Sequential(*[conv(num_feat, num_feat) for _ in range(num_conv)])
        self.head = nn.ConvTranspose2d(num_feat, 5, 4, 2, 1)  # back to 1/(2*scale); bilinear does the rest
        nn.init.zeros_(self.head.weight)
        assert self.head.bias is not None  # built with bias
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.scale
        x = resize(x, 1 / s)
        if flow is not None:
            x = torch.cat((x, resize(flow, 1 / s) / s), 1)
        feat = self.down(x)
        out = resize(self.head(feat + self.body(feat)), 2 * s)
        return out[:, :4] * (2 * s), out[:, 4:5]


class Refine(nn.Module):
    """Residual for the fused frame from the frames, warped frames, flows and mask (one down/up level)."""

    def __init__(self, c_in: int, num_feat: int):
        super().__init__()
        self.inp = conv(c_in, num_feat)
        self.down = nn.Sequential(conv(num_feat, num_feat * 2, 2), conv(num_feat * 2, num_feat * 2))
        self.up = nn.Sequential(nn.ConvTranspose2d(num_feat * 2, num_feat, 4, 2, 1), nn.PReLU(num_feat))
        self.out = nn.Conv2d(num_feat * 2, 3, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        assert self.out.bias is not None  # built with bias
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.inp(x)
        return self.out(torch.cat((a, self.up(self.down(a))), 1))


class IFNetLite(nn.Module):
    """Predict the frame at time `t` between `frame0` and `frame1`.

    `forward(frame0, frame1, t=0.5)`: frames `(B, 3, H, W)` float RGB in [0, 1] (any size; padded
    inside to a multiple of `4 * max(scales)` and cropped back), `t` a float or a `(B,)` tensor in
    (0, 1) -> `(B, 3, H, W)` in [0, 1].

    Args:
        num_feat: feature channels of each IFBlock, coarse to fine (one block per entry).
        scales: resolution divisor of each block (e.g. 4, 2, 1).
        num_conv: residual convs per block.
        refine_feat: channels of the refinement net (0 = no residual refinement).
        flow_init: None (blocks start from zero flow) or "dis" / "farneback" (classical flow start).
        ensemble: also predict with the frames swapped (t -> 1 - t) and average (RIFE's ensemble option:
            twice the work, a steadier result); inference only, training supervises `stages`.
    """

    def __init__(self, num_feat: tuple[int, ...] = (48, 32, 24), scales: tuple[int, ...] = (4, 2, 1),
                 num_conv: int = 3, refine_feat: int = 16, flow_init: str | None = None,
                 ensemble: bool = False):
        super().__init__()
        if len(num_feat) != len(scales) or not scales:
            raise ValueError("IFNetLite: num_feat and scales need one entry per block")
        self.scales = tuple(int(s) for s in scales)
        self.multiple = 4 * max(self.scales)
        self.flow_init, self.ensemble = None, bool(ensemble)
        if flow_init is not None:
            from vsr.models.classical_flow import ClassicalFlow

            self.flow_init = ClassicalFlow(flow_init)
        # block 0 sees (frame0, frame1, t); later ones (and all, from a classical start) also the
        # warped frames and mask (+ 4 flow channels)
        first = 7 if self.flow_init is None else 7 + 6 + 1 + 4
        self.blocks = nn.ModuleList(
            IFBlock(first if i == 0 else 7 + 6 + 1 + 4, c, num_conv, s) for i, (c, s) in enumerate(zip(num_feat, scales)))
        self.refine = Refine(6 + 6 + 4 + 1 + 1, refine_feat) if refine_feat > 0 else None

    def stages(self, frame0: torch.Tensor, frame1: torch.Tensor, t=0.5) -> list[torch.Tensor]:
        """The fused frame after each block, and last the refined output (all `(B, 3, H, W)`, unclamped
        except the last); training supervises every stage so the coarse flows learn too."""
        b, _, h, w = frame0.shape
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            frame0 = F.pad(frame0, (0, pad_w, 0, pad_h), mode="replicate")
            frame1 = F.pad(frame1, (0, pad_w, 0, pad_h), mode="replicate")
        t = torch.as_tensor(t, dtype=frame0.dtype, device=frame0.device).reshape(-1, 1, 1, 1)
        tmap = t.expand(b, 1, *frame0.shape[-2:])
        flow: torch.Tensor | None = None
        mask: torch.Tensor | None = None  # set with flow
        warped0, warped1 = frame0, frame1
        if self.flow_init is not None:
            with torch.no_grad():
                ft0, ft1, weight0 = self.flow_init.flows(frame0.detach(), frame1.detach(), t)
            flow, mask = torch.cat((ft0, ft1), 1), torch.logit(weight0.clamp(0.01, 0.99))
            warped0, warped1 = flow_warp(frame0, ft0), flow_warp(frame1, ft1)
        outputs = []
        for block in self.blocks:
            if flow is None or mask is None:  # both or neither
                x = torch.cat((frame0, frame1, tmap), 1)
            else:
                x = torch.cat((frame0, frame1, tmap, warped0, warped1, mask), 1)
            d_flow, d_mask = block(x, flow)
            flow = d_flow if flow is None else flow + d_flow
            mask = d_mask if mask is None else mask + d_mask
            warped0, warped1 = flow_warp(frame0, flow[:, :2]), flow_warp(frame1, flow[:, 2:])
            m = torch.sigmoid(mask)
            outputs.append(warped0 * m + warped1 * (1 - m))
        assert flow is not None and mask is not None  # scales (blocks) is not empty
        if self.refine is not None:
            res = self.refine(torch.cat((frame0, frame1, warped0, warped1, flow, mask, tmap), 1))
            outputs.append((outputs[-1] + res).clamp(0, 1))
        else:
            outputs[-1] = outputs[-1].clamp(0, 1)
        return [o[..., :h, :w] for o in outputs]

    def descriptor(self) -> ModelDescriptor:
        return ModelDescriptor(task="interpolation", scale=None, temporal=True)

    def forward(self, frame0: torch.Tensor, frame1: torch.Tensor, t=0.5) -> torch.Tensor:
        out = self.stages(frame0, frame1, t)[-1]
        if self.ensemble:
            back = 1 - torch.as_tensor(t, dtype=frame0.dtype, device=frame0.device)
            out = 0.5 * (out + self.stages(frame1, frame0, back)[-1])
        return out
