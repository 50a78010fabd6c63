"""Optical flow for metrics: OpenCV (no weights needed) Farneback, as TecoGAN's tOF uses, or DIS;
or torchvision's RAFT-small when its weights are on disk (`RaftFlow`).

Not differentiable: use it for metrics and for flow targets of a temporal loss, not
inside a network. OpenCV gets grey uint8 frames on the CPU; the flow comes back on the
frames' device.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from vsr.errors import UserError, check_choice
from vsr.ops import OPENCV_FLOW_METHODS, opencv_flow, to_grey

FLOW_METHODS = (*OPENCV_FLOW_METHODS, "raft")
RAFT_FILE = "raft_small_C_T_V2-01064c6d.pth"  # torchvision Raft_Small_Weights.C_T_V2

def estimate_flow(prev: torch.Tensor, next: torch.Tensor,  # noqa: A002
                  method: str | Callable = "farneback") -> torch.Tensor:
    """Dense flow between frame pairs, OpenCV's convention.

    Args:
        prev, next: frames `(N, 3, H, W)` or one frame `(3, H, W)`, RGB float in [0, 1] or uint8.
        method: "farneback", "dis", or a callable `(prev, next) -> flow` on `(N, 3, H, W)`
            batches such as `RaftFlow` ("raft" loads RaftFlow from the torch hub cache).
    Returns:
        flow `(N, 2, H, W)` (or `(2, H, W)`) float32 in pixels, x then y, such that
        `prev[y, x] ≈ next[y + flow_y, x + flow_x]`: `vsr.models.alignment.flow_warp(next, flow)`
        rebuilds `prev`.
    """
    single = prev.ndim == 3
    if single:
        prev, next = prev[None], next[None]
    if prev.shape != next.shape:
        raise ValueError(f"flow needs frames of one size; got {tuple(prev.shape)} and {tuple(next.shape)}")
    if method == "raft":
        method = RaftFlow()
    if callable(method):
        flow = method(prev, next)
    else:
        check_choice("flow method", method, FLOW_METHODS)
        a, b = to_grey(prev), to_grey(next)
        flows = np.stack([opencv_flow(p, n, method) for p, n in zip(a, b)])
        flow = torch.from_numpy(flows).permute(0, 3, 1, 2).to(prev.device)
    return flow[0] if single else flow


class RaftFlow:
    """torchvision RAFT-small (Teed & Deng 2020) with weights read from disk, never downloaded.

    Args:
        weights: path of `raft_small_C_T_V2-01064c6d.pth`; default `torch.hub.get_dir()/checkpoints/`.
        iterations: refinement steps (12 as in the paper).
        device: where RAFT runs.
    Call with `(prev, next)` batches `(N, 3, H, W)` -> flow `(N, 2, H, W)`, OpenCV's convention.
    """

    _cache: dict = {}

    def __init__(self, weights: str | Path | None = None, iterations: int = 12, device: str | torch.device = "cpu"):
        file = Path(weights).expanduser() if weights else Path(torch.hub.get_dir()) / "checkpoints" / RAFT_FILE
        if not file.is_file():
            raise UserError(f"metrics.flow=raft needs {RAFT_FILE} (no download here): not found at {file}; "
                            "set metrics.flow_weights=PATH or use metrics.flow=farneback")
        self.iterations, self.device = iterations, torch.device(device)
        key = (str(file), str(self.device))
        if key not in self._cache:
            from torchvision.models.optical_flow import raft_small

            model = raft_small(weights=None)
            try:
                model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
            except RuntimeError as err:
                raise UserError(f"{file} is not a torchvision RAFT-small checkpoint "
                                f"({str(err).strip().splitlines()[0]})") from None
            self._cache[key] = model.eval().requires_grad_(False).to(self.device)
        self.model = self._cache[key]

    @torch.no_grad()
    def __call__(self, prev: torch.Tensor, next: torch.Tensor) -> torch.Tensor:  # noqa: A002
        h, w = prev.shape[-2:]
        # RAFT needs sides divisible by 8 and at least 128 (its correlation pyramid): pad, then crop back.
        pad = (0, max(128, w + -w % 8) - w, 0, max(128, h + -h % 8) - h)

        def prepare(x):
            x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
            return F.pad(x.to(self.device) * 2 - 1, pad, mode="replicate")

        flow = self.model(prepare(prev), prepare(next), num_flow_updates=self.iterations)[-1]
        return flow[..., :h, :w].to(prev.device)
