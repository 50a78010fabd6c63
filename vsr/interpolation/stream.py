"""Interpolate a stream of frames: `factor` output frames per input frame, scene cuts held.

`FrameInterpolator.stream(frames)` takes uint8 `(H, W, 3)` frames as they arrive and yields, for
each input frame i, frame i itself and then `factor - 1` frames at t = k/factor between i and i+1.
The last input frame is held `factor` times, so N input frames give exactly `N * factor` output
frames and, played at `factor` times the frame rate, last exactly as long as the input (its audio
stays in sync). Only the previous frame is held: memory is flat, and nothing is lost or doubled
wherever the frames come from (an upscaler's chunks, a decoder).

Where `scene_cut(previous, next)` says the two frames belong to different shots, the previous
frame is held instead of inventing a blend of two unrelated pictures.
"""

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from vsr.errors import UserError
from vsr.interpolation.baselines import BASELINES, build_baseline
from vsr.io.images import to_tensor, to_uint8
from vsr.ops import BT601_LUMA
from vsr.weights import ROOT as WEIGHTS_ROOT

SHIPPED = WEIGHTS_ROOT / "interp"
LUMA = torch.tensor(BT601_LUMA).view(1, 3, 1, 1)


def _small_luma(frame: torch.Tensor, size: int = 64) -> torch.Tensor:
    """`(3, H, W)` in [0, 1] -> luma averaged down to about `size` pixels on the long side."""
    y = (frame[None].float() * LUMA).sum(1, keepdim=True)
    factor = max(1, max(y.shape[-2:]) // size)
    return F.avg_pool2d(y, factor, ceil_mode=True)[0, 0] if factor > 1 else y[0, 0]


def cut_score(a: torch.Tensor, b: torch.Tensor) -> float:
    """How unlike two frames `(3, H, W)` are as shots, in [0, 1]: the larger of the luma histogram
    distance (half the L1 distance of 32-bin histograms) and twice the mean absolute difference of
    their thumbnails (about 64 px). Motion within a shot keeps the histogram and, at thumbnail size,
    barely moves the pixels; a cut changes both."""
    ya, yb = _small_luma(a), _small_luma(b)
    ha = torch.histc(ya.clamp(0, 1), 32, 0, 1) / ya.numel()
    hb = torch.histc(yb.clamp(0, 1), 32, 0, 1) / yb.numel()
    return float(max(0.5 * (ha - hb).abs().sum(), 2 * (ya - yb).abs().mean()))


def load_interpolator(spec: str | None, device: torch.device | str = "cpu") -> tuple[Callable, str]:
    """`(interpolator, name)` for `spec`: a baseline name (repeat, blend, flow), an export folder
    with an interpolation model (model.json + model.safetensors), or None for the shipped one."""
    if spec in BASELINES:
        return build_baseline(spec), str(spec)
    from vsr.runtimes.model_files import load

    folder = Path(spec) if spec else SHIPPED
    if not (folder / "model.json").is_file():
        if not spec:
            raise UserError(f"the shipped interpolator {folder} is missing; pass interpolator=blend|flow|repeat|DIR")
        raise UserError(f"interpolator={spec}: not blend, flow, repeat or a folder with model.json; package a "
                        "trained one with `python export.py checkpoint=RUN/checkpoints/last.ckpt output_dir=DIR`")
    model, meta = load(folder, device=device)
    if meta["descriptor"].task != "interpolation":
        raise UserError(f"interpolator={folder} holds a {type(model).__name__}, not a frame interpolator")
    return model, str(folder)


class SceneCuts:
    """Watch a frame stream and record where shots change: `watch(frames)` passes uint8 frames through
    unchanged and adds i to `cuts` when `cut_score(frame i, frame i+1)` exceeds `threshold`.

    Cuts are found on the source frames, also when interpolation runs after upscaling (the upscaler
    reads frame i+1 before it yields frame i, so the answer is known in time)."""

    def __init__(self, threshold: float = 0.3):
        self.threshold, self.cuts = float(threshold), set()

    def watch(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        previous = None
        for index, frame in enumerate(frames):
            current = to_tensor([frame])[0]
            if previous is not None and cut_score(previous, current) > self.threshold:
                self.cuts.add(index - 1)
            previous = current
            yield frame


class FrameInterpolator:
    """Multiply a stream's frame rate by `factor` with `interpolator(frame0, frame1, t)`.

    Args:
        interpolator: callable on `(B, 3, H, W)` float tensors (a model or a baseline).
        factor: output frames per input frame (2 doubles the frame rate; 1 passes frames through).
        cut_threshold: `cut_score` above which two frames are treated as a scene cut (held).
        device: where the interpolator runs.
    """

    def __init__(self, interpolator: Callable, factor: int = 2, cut_threshold: float = 0.3,
                 device: str | torch.device = "cpu"):
        self.interpolator, self.factor = interpolator, int(factor)
        self.cut_threshold, self.device = float(cut_threshold), torch.device(device)
        self.cuts: list[int] = []  # input frame indices i where i -> i+1 was a cut

    def between(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The `factor - 1` frames strictly between `a` and `b` (`(3, H, W)` each) -> `(factor-1, 3, H, W)`."""
        n = self.factor - 1
        t = torch.arange(1, self.factor, dtype=torch.float32) / self.factor
        with torch.inference_mode():
            out = self.interpolator(a[None].expand(n, -1, -1, -1).to(self.device),
                                    b[None].expand(n, -1, -1, -1).to(self.device), t.to(self.device))
        return out.float().clamp(0, 1).cpu()

    def stream(self, frames: Iterable[np.ndarray], cuts: SceneCuts | None = None) -> Iterator[np.ndarray]:
        """uint8 `(H, W, 3)` frames in, `factor` uint8 frames out per frame in (see the module doc).
        `cuts`: a `SceneCuts` watching the source frames (default: cuts are scored on these frames)."""
        previous = previous_frame = None
        for index, frame in enumerate(frames):
            current = to_tensor([frame])[0]
            if previous is not None:
                yield previous_frame
                if self.factor > 1:
                    cut = (index - 1 in cuts.cuts) if cuts is not None else (
                        cut_score(previous, current) > self.cut_threshold)
                    if cut:
                        self.cuts.append(index - 1)
                        for _ in range(self.factor - 1):
                            yield previous_frame
                    else:
                        middle = to_uint8(self.between(previous, current))
                        yield from middle
            previous, previous_frame = current, frame
        if previous is not None:
            for _ in range(self.factor):
                yield previous_frame
