"""Self-ensemble (geometric test-time augmentation; EDSR's "+" results, "x8" in the SR papers).

The model runs on flipped and transposed copies of a clip; each output is transformed back and the
outputs are averaged. It costs `size` model calls per clip and, measured on the shipped x4 model
(experiments/shipped_x4/README.md), adds a few tenths of a dB: the model's errors under the eight
symmetries of the square are partly independent, so they partly cancel.
"""

import itertools
from collections.abc import Callable

import torch

from vsr.errors import UserError
from vsr.work import part

SIZES = (1, 2, 4, 8)
# (flip width, flip height, swap height and width): identity first, so size 1 is the plain model
TRANSFORMS = [(w, h, t) for t in (False, True) for h in (False, True) for w in (False, True)]


def _apply(x: torch.Tensor, flip_w: bool, flip_h: bool, transpose: bool) -> torch.Tensor:
    dims = [d for d, on in ((-1, flip_w), (-2, flip_h)) if on]
    x = x.flip(dims) if dims else x
    return x.transpose(-1, -2) if transpose else x


def _undo(y: torch.Tensor, flip_w: bool, flip_h: bool, transpose: bool) -> torch.Tensor:
    y = y.transpose(-1, -2) if transpose else y
    dims = [d for d, on in ((-1, flip_w), (-2, flip_h)) if on]
    return y.flip(dims) if dims else y


def check_size(size, auto: str | None = None) -> int:
    """`size` if it is one of SIZES; `auto`: what `ensemble=auto` means where the caller accepts it."""
    if size not in SIZES:
        choices = f"{'auto or ' if auto else ''}one of {', '.join(map(str, SIZES))}"
        raise UserError(f"ensemble={size} must be {choices} ({f'auto: {auto}; ' if auto else ''}"
                        "1 = off; 2: + horizontal flip; 4: + vertical flips; 8: + transposes)")
    return int(size)


class SelfEnsemble:
    """Callable `(..., H, W)` clip -> mean of `run` over the first `size` symmetries (1 = `run` itself)."""

    def __init__(self, run: Callable[..., torch.Tensor], size: int = 1):
        self.run, self.size = run, check_size(size)

    def __call__(self, clip: torch.Tensor, **options) -> torch.Tensor:
        """`options` (e.g. the frames to `keep`) go to every `run` call: none of them is spatial."""
        if self.size == 1:
            return self.run(clip, **options)
        # Summed in place, each output transformed back one frame at a time: at 8K a copy of a
        # 5-frame window is 2 GB.
        with torch.inference_mode():
            with part(1 / self.size):  # each copy an equal share of the progress bar's frames
                total = self.run(clip, **options).float()  # identity first
            for transform in TRANSFORMS[1: self.size]:
                with part(1 / self.size):
                    out = self.run(_apply(clip, *transform), **options)
                for index in itertools.product(*map(range, out.shape[:-3])):
                    total[index].add_(_undo(out[index], *transform))
                del out
            return total.div_(self.size)
