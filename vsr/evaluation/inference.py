"""Run a generator over a whole clip, in temporal chunks with overlapping context."""

import torch
from torch import nn

from vsr.errors import UserError
from vsr.inference.windows import plan_windows
from vsr.metrics.fidelity import to_uint8


@torch.inference_mode()
def upscale_clip(model: nn.Module, lr: torch.Tensor, chunk: int = 0, overlap: int = 0,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """LR clip `(T, 3, h, w)` float in [0, 1] -> SR clip `(T, 3, H, W)` uint8 on the CPU.

    Each chunk of `chunk` frames sees `overlap` extra frames on each side (recurrent models
    get context across chunk borders); the context frames' outputs are discarded.
    Outputs are rounded to uint8 at once, as if saved, which also bounds memory.
    """
    if lr.ndim != 4 or lr.shape[0] == 0:
        raise UserError(f"empty or malformed LR clip {tuple(lr.shape)}; expected (T, 3, h, w) with T >= 1")
    if overlap < 0:
        raise UserError(f"inference.overlap={overlap} must be >= 0")
    pieces = []
    for lo, start, end, hi in plan_windows(lr.shape[0], chunk, overlap):
        out = model(lr[None, lo:hi].to(device))
        if out.ndim != 5 or out.shape[1] != hi - lo:
            raise UserError(f"the model returned {tuple(out.shape)} for a clip of {tuple(lr[None, lo:hi].shape)}; "
                            "expected (B, T, 3, H, W) with the same T")
        pieces.append(to_uint8(out[0, start - lo:end - lo].float()).cpu())
    return torch.cat(pieces)
