"""Aligning carried features to the current frame: flow warping and a SPyNet-style flow net."""

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from vsr.errors import UserError
from vsr.ops import flow_warp


class SpyNetLevel(nn.Module):
    """One pyramid level: predicts a flow residual from (reference, warped support, flow)."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        ch_in = 8
        for ch in channels:
            layers += [nn.Conv2d(ch_in, ch, 7, 1, 3), nn.ReLU(inplace=False)]
            ch_in = ch
        layers.append(nn.Conv2d(ch_in, 2, 7, 1, 3))
        self.basic_module = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.basic_module(x)


class SpyNet(nn.Module):
    """Coarse-to-fine optical flow (Ranjan & Black, SPyNet), learned jointly with the generator.

    With `num_levels=6` and `channels=(32, 64, 32, 16)` the parameter names and shapes are
    those of BasicSR's SPyNet, so `weights_path` can load `spynet_sintel_final-3d2a1287.pth`.

    Args:
        num_levels: pyramid levels (inputs are resized to a multiple of 2**(num_levels-1)).
        channels: hidden channels of each level's conv stack.
        weights_path: optional local file with pretrained SPyNet weights.
    """

    mean: torch.Tensor  # buffers
    std: torch.Tensor

    def __init__(self, num_levels: int = 6, channels: tuple[int, ...] = (32, 64, 32, 16),
                 weights_path: str | None = None):
        super().__init__()
        self.num_levels = num_levels
        self.basic_module = nn.ModuleList(SpyNetLevel(tuple(channels)) for _ in range(num_levels))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        if weights_path:
            self.load_pretrained(weights_path)

    def load_pretrained(self, path: str) -> None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(f"model.spynet_path={path}: file not found; download BasicSR's "
                            "spynet_sintel_final-3d2a1287.pth or set model.spynet_path=null")
        state = torch.load(file, map_location="cpu", weights_only=True)
        state = state.get("params", state)
        try:
            self.load_state_dict(state)
        except RuntimeError as err:
            raise UserError(f"model.spynet_path={path} does not match SpyNet(num_levels={self.num_levels}, "
                            f"channels=...): {str(err).splitlines()[0]}") from None

    def forward(self, ref: torch.Tensor, supp: torch.Tensor) -> torch.Tensor:
        """Flow `(N, 2, H, W)` from `ref` to `supp` (where each ref pixel is found in supp)."""
        h, w = ref.shape[-2:]
        m = 2 ** (self.num_levels - 1)
        # ceil to a multiple with non-negative floor division only: ONNX's integer Div truncates, so
        # the -(-h // m) idiom rounded down in exported graphs (wrong flows at sizes off the multiple)
        hp, wp = max(m, (h + m - 1) // m * m), max(m, (w + m - 1) // m * m)
        ref = F.interpolate((ref - self.mean) / self.std, size=(hp, wp), mode="bilinear", align_corners=False)
        supp = F.interpolate((supp - self.mean) / self.std, size=(hp, wp), mode="bilinear", align_corners=False)
        refs, supps = [ref], [supp]
        for _ in range(self.num_levels - 1):
            refs.insert(0, F.avg_pool2d(refs[0], 2))
            supps.insert(0, F.avg_pool2d(supps[0], 2))
        flow = None
        for level, (r, s) in enumerate(zip(refs, supps)):
            if flow is None:
                up = r.new_zeros(r.shape[0], 2, *r.shape[-2:])
            else:
                up = F.interpolate(flow, size=r.shape[-2:], mode="bilinear", align_corners=True) * 2.0
            flow = up + self.basic_module[level](torch.cat((r, flow_warp(s, up), up), 1))
        assert flow is not None  # num_levels >= 1
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        # x and y rescaled by multiplying with the sizes themselves, which stay symbolic in exported
        # graphs (a tensor built from w / wp froze the example's value into ONNX)
        return torch.cat((flow[:, :1] * (w / wp), flow[:, 1:] * (h / hp)), 1)
