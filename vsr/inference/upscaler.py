"""`Upscaler`: stream a video's frames through a generator in temporal chunks and spatial tiles."""

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vsr.errors import UserError, check_choice, check_number, is_number
from vsr.inference import filters
from vsr.inference.ensemble import SelfEnsemble
from vsr.inference.precision import check_passed, native_bf16
from vsr.inference.runtime import AutoRuntime
from vsr.inference.tiling import needs_tiles, run_tiled, run_tiled_recurrent
from vsr.inference.windows import next_window, oldest_needed
from vsr.io.images import to_frames, to_tensor
from vsr.models.descriptor import describe
from vsr.options import WINDOWS
from vsr.runtimes.factory import onnx_clip_frames
from vsr.runtimes.model_files import load, read_model_json
from vsr.work import part

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CLIP_FRAMES = 20  # frames per model call with chunk=auto when no fixed-length ONNX graph says otherwise
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
WINDOW_BYTES = 2 * 2**30  # chunk=auto: float output frames one call may hold (20 x 720p, 5 x 8K)


def pick_device(device: str) -> torch.device:
    """`auto`: CUDA, then Apple MPS, then CPU. An explicit device must exist."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"device={device} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={device} but CUDA is not available here; use device=auto or device=cpu")
    return dev


def pick_precision(precision: str, device: torch.device, folder: str | Path | None = None) -> str:
    """`auto`: fp16 on CUDA; on the CPU bf16 where the model in `folder` passed its bf16 check and
    the CPU has native bf16 (vsr.inference.precision), else fp32."""
    check_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and native_bf16() and check_passed(folder) else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise UserError("precision=fp16 on the CPU is emulated (about 100x slower); use precision=fp32 or bf16")
    return precision


# fit= shorthands: the usual 16:9 targets (a clip of another shape fits inside the box)
FIT_NAMES = {"4k": (3840, 2160), "2160p": (3840, 2160), "1440p": (2560, 1440), "1080p": (1920, 1080),
             "720p": (1280, 720)}


def parse_fit(fit: str | None) -> tuple[int, int] | None:
    """`"3840x2160"` or `"4k"` -> `(3840, 2160)` (width, height)."""
    if fit in (None, ""):
        return None
    named = FIT_NAMES.get(str(fit).strip().lower())
    if named:
        return named
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(fit))
    if not match or min(int(match[1]), int(match[2])) < 2:
        raise UserError(f"fit={fit} is not a size; write it as WIDTHxHEIGHT (fit=3840x2160) or one of "
                        f"{', '.join(FIT_NAMES)}")
    return int(match[1]), int(match[2])


def auto_chunk(folder: str | Path | None, overlap: int) -> int:
    """chunk=auto: calls as long as the folder's ONNX graph takes (so every call can run on it),
    else `CLIP_FRAMES`, less the context frames."""
    return max(1, (onnx_clip_frames(folder) or CLIP_FRAMES) - 2 * overlap)


class Upscaler:
    """Upscale clips or whole videos with a generator, in bounded memory.

    Args:
        model: generator taking `(B, T, 3, H, W)` in [0, 1] and returning `(B, T, 3, sH, sW)`.
        scale: the model's factor s.
        temporal: the model uses neighbouring frames (default: its descriptor says); then each chunk
            gets `overlap` frames of context on each side, run and discarded from the output.
        chunk: output frames per model call (memory grows with chunk + 2*overlap); "auto": fill
            the clip length of the export folder's ONNX graph (else 20 frames) after the context,
            shortened for large frames (`fit_chunk`: at most `WINDOW_BYTES` of output frames).
        overlap: context frames on each side of a chunk (temporal models only).
        tile: LR tile size in pixels (0 = whole frame); `tile_pad`: context around each tile.
        device, precision: "auto" picks CUDA/MPS/CPU and fp16 on CUDA, fp32 elsewhere.
        denoise: 0..1 or "auto" (the setting of the model in `folder`), motion-compensated temporal noise
            reduction of the output (`filters.temporal_denoise`:
            each frame averaged with its aligned neighbours where they agree; single-frame models then
            get one context frame on each side of a chunk, so windows stay independent).
        sharpen: unsharp-mask amount after the model (0 = off) or "auto" (the setting of the model in `folder`).
        color_match: match each output frame's channel means/stds to the input frame's.
        outscale: final factor relative to the input (default s); above s the model is applied
            repeatedly, each later pass on the result resized to what the remaining passes scale to
            the target (outscale=8 with a x4 model: x4, resized to x2, x4 again = x8).
        fit: "WxH": the largest size inside that box keeping the aspect ratio (overrides outscale).
        runtime: "auto" (the fastest runtime on this device, timed at the first model call: see
            `vsr.inference.runtime`) or eager / channels_last / onnxruntime / openvino / ncnn;
            `folder`: the export folder whose model.ncnn.* / ONNX files the runtimes may use.
        ensemble: 1 (off), 2, 4 or 8: average the model over flipped / transposed copies of each
            clip (`vsr.inference.ensemble`; `ensemble` times the model work, a few tenths of a dB);
            `from_dir` also takes "auto" (its default): what upscale.py runs the folder's model with.
    """

    def __init__(self, model: nn.Module, scale: int, temporal: bool | None = None, chunk: int | str = WINDOWS.chunk,
                 overlap: int = WINDOWS.overlap, tile: int = 0, tile_pad: int = WINDOWS.tile_pad, device: str = "auto",
                 precision: str = "auto", denoise: float | str = 0.0, sharpen: float | str = 0.0,
                 color_match: bool = False, outscale: float | None = None, fit: str | None = None,
                 runtime: str = "auto", folder: str | Path | None = None, ensemble: int = 1):
        for name, value, low in (("overlap", overlap, 0), ("tile", tile, 0), ("tile_pad", tile_pad, 0)):
            check_number(name, value, low, integer=True)
        descriptor = describe(model)
        temporal = descriptor.temporal if temporal is None else temporal
        self.auto_chunk = chunk == "auto"
        if self.auto_chunk:
            chunk = auto_chunk(folder, overlap if temporal else 0)
        check_number("chunk", chunk, 1, integer=True, hint=" or auto")
        from vsr.inference.shipped import auto_filter

        # "auto": the setting the model in `folder` was measured with (vsr.inference.shipped)
        if denoise == "auto":
            denoise = auto_filter(folder, "denoise") if folder is not None else 0.0
        if sharpen == "auto":
            sharpen = auto_filter(folder, "sharpen") if folder is not None else 0.0
        check_number("denoise", denoise, 0, 1, hint=" (0 = off; auto: the model's setting)")
        check_number("sharpen", sharpen, 0, hint=" (0 = off; auto: the model's setting)")
        if outscale is not None and not (is_number(outscale) and outscale > 0):
            raise UserError(f"outscale={outscale} must be a positive factor, e.g. outscale=2")
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device, folder)
        self.model = model.eval().to(self.device)
        self.multiple = descriptor.size_multiple  # input size the model needs
        self.partial = descriptor.partial_reconstruction  # context frames propagate only; tiles reconstruct
        self.scale = int(scale)
        self.temporal = bool(temporal)
        # denoise= averages a frame with its neighbours: a single-frame model then computes one context frame a side
        self.chunk, self.overlap = int(chunk), int(overlap) if temporal else (1 if float(denoise) > 0 else 0)
        self.max_chunk = self.chunk
        self.tile, self.tile_pad = int(tile), int(tile_pad)
        self.denoise, self.sharpen, self.color_match = float(denoise), float(sharpen), bool(color_match)
        self.outscale = None if outscale is None else float(outscale)
        self.fit = parse_fit(fit)
        self.runtime = AutoRuntime(self.model, self.temporal, self.device, self.precision, runtime, folder)
        self.ensemble = SelfEnsemble(self.runtime, ensemble)
        self.model_seconds, self.computed_frames = 0.0, 0  # time in model passes, frames they computed
        self.progress = None  # a `vsr.inference.progress.Progress` counting frames as they finish

    @classmethod
    def from_dir(cls, path: str | Path, **options) -> "Upscaler":
        """An Upscaler for an export directory (model.json + model.safetensors); `ensemble`, `denoise`
        and `sharpen` "auto" (the defaults) as upscale.py runs the model (`vsr.inference.shipped`)."""
        from vsr.inference.shipped import auto_ensemble

        model, meta = load(path)
        options.setdefault("folder", read_model_json(path)[0])  # ncnn / ONNX files exported beside it
        if options.get("ensemble", "auto") == "auto":
            options["ensemble"] = auto_ensemble(path)
        options.setdefault("denoise", "auto")
        options.setdefault("sharpen", "auto")
        descriptor = meta["descriptor"]
        if descriptor.task != "super-resolution":
            raise UserError(f"weights={path} holds a frame interpolator, not an upscaler; pass it as interpolator={path}")
        return cls(model, descriptor.scale, temporal=descriptor.temporal, **options)

    def report_to(self, progress) -> None:
        """Count frames on `progress` as the model finishes them (a window's frames one by one, not
        when the window ends) and say there what preparing the runtime does."""
        self.progress = progress
        self.runtime.notify = progress.step
        # the job's model passes: choosing a runtime may take a share of them (vsr.runtimes.choice)
        self.runtime.chooser.job_frames = progress.total * self.ensemble.size

    # sizes ----------------------------------------------------------------------------------
    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """Final `(width, height)` for an input of `width` x `height`."""
        if self.fit is not None:
            factor = min(self.fit[0] / width, self.fit[1] / height)
        else:
            factor = self.outscale or self.scale
        return max(1, round(width * factor)), max(1, round(height * factor))

    def fit_chunk(self, width: int, height: int) -> int:
        """chunk=auto for frames of this size: as long as set, but holding at most `WINDOW_BYTES` of
        float output frames (the first pass's or the final size, whichever is larger), so that large
        frames (1080p -> 4K with a x4 model: 8K outputs of 398 MB) fit in memory too."""
        if not self.auto_chunk:
            return self.chunk
        out_w, out_h = self.output_size(width, height)
        frame_bytes = 3 * 4 * max(width * height * self.scale**2, out_w * out_h)
        return max(1, min(self.max_chunk, WINDOW_BYTES // frame_bytes))

    def passes(self, width: int, height: int) -> int:
        """Model applications needed to reach the output size (at least one)."""
        out_w, out_h = self.output_size(width, height)
        factor = max(out_w / width, out_h / height)
        return max(1, math.ceil(math.log(factor, self.scale) - 1e-9)) if factor > 1 else 1

    # tensors --------------------------------------------------------------------------------
    def _model_call(self, clip: torch.Tensor, keep: slice = slice(None),
                    run: Callable[..., torch.Tensor] | None = None) -> torch.Tensor:
        """Frames `keep` of the model's output (or of `run`'s, a `(clip, keep=)` function of it) on
        `(T, 3, h, w)`; sizes it cannot take (x2 Real-ESRGAN layout folds 2x2 pixels) are edge-padded
        to a multiple and the padding is cropped from the output."""
        h, w = clip.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        x = F.pad(clip, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else clip
        autocast = (torch.autocast(self.device.type, dtype=DTYPES[self.precision])
                    if self.precision in DTYPES else nullcontext())
        with torch.inference_mode(), autocast:
            out = (run or self.ensemble)(x.to(self.device)[None], keep=keep)[0]
        return out[..., : h * self.scale, : w * self.scale].float().cpu()

    def model_pass(self, clip: torch.Tensor, keep: slice = slice(None)) -> torch.Tensor:
        """One model application to `(T, 3, H, W)`, tiled when `tile` > 0; only frames `keep`
        of the result are computed (recurrent models propagate through context frames without
        reconstructing them). Recurrent models propagate over whole frames and reconstruct tile by
        tile (exact; see `run_tiled_recurrent`), in PyTorch."""
        h, w = clip.shape[-2:]
        if self.temporal and self.partial and needs_tiles(h, w, self.tile):
            staged = SelfEnsemble(lambda x, keep: run_tiled_recurrent(self.model, x, keep, self.scale, self.tile,
                                                                      self.tile_pad), self.ensemble.size)
            return self._model_call(clip, keep, staged)
        return run_tiled(lambda x: self._model_call(x, keep), clip, self.scale, self.tile, self.tile_pad,
                         self.multiple)

    def filter_reads(self, start: int, stop: int, lo: int, hi: int) -> slice:
        """The frames of `lo:hi` the filters read to finish frames `start:stop`: with denoise= one
        neighbour on each side (those inside `lo:hi`), else the frames themselves."""
        return slice(max(lo, start - 1), min(hi, stop + 1)) if self.denoise > 0 else slice(start, stop)

    def upscale_clip(self, clip: torch.Tensor, keep: slice = slice(None)) -> torch.Tensor:
        """Clip `(T, 3, H, W)` in [0, 1] at once (no temporal chunks) -> frames `keep` of the
        result, `(T', 3, H', W')` at the output size."""
        return self._upscale(clip, keep)[0]

    @torch.inference_mode()
    def _upscale(self, clip: torch.Tensor, keep: slice = slice(None),
                 reused: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`upscale_clip`, and the model's output at the output size before the filters (of the
        frames the filters read). `reused`: that output for the first frames of `clip`, from an
        earlier window (single-frame models only: a frame's output depends on that frame alone)."""
        h, w = clip.shape[-2:]
        out_w, out_h = self.output_size(w, h)
        start, stop, _ = keep.indices(len(clip))
        wide = self.filter_reads(start, stop, 0, len(clip))  # denoise= needs the kept frames' neighbours too
        reused = reused[: wide.stop - wide.start] if reused is not None else torch.empty(0)
        # a single-frame model runs only the frames the filters read and an earlier window did not compute
        x = clip if self.temporal else clip[wide.start + len(reused): wide.stop]
        passes = self.passes(w, h)
        # chained passes: each later one on the result shrunk to what the remaining passes scale up to the target
        lefts = [self.scale ** (passes - i) for i in range(1, passes)]
        sizes = [(h, w)] + [(max(1, round(out_h / left)), max(1, round(out_w / left))) for left in lefts]
        for i, size in enumerate(sizes if len(x) else []):
            if i > 0:
                x = filters.resize(x.clamp(0, 1), size)
            started = time.perf_counter()
            with part(size[0] * size[1] / sum(a * b for a, b in sizes)):  # a pass's share of the bar: its pixels
                x = self.model_pass(x, wide if self.temporal and i == passes - 1 else slice(None))
            self.model_seconds += time.perf_counter() - started
            self.computed_frames += len(clip) if self.temporal else len(x)
        raw = filters.resize(x.clamp_(0, 1), (out_h, out_w)) if len(x) else reused  # in place: x is this call's own
        if len(x) and len(reused):
            raw = torch.cat([reused, raw])
        x = raw
        if self.denoise > 0:
            x = filters.temporal_denoise(clip[wide], x, self.denoise, range(start - wide.start, stop - wide.start))
        if self.color_match:
            x = filters.color_match(x, clip[keep])
        return filters.sharpen(x, self.sharpen), raw

    # streams --------------------------------------------------------------------------------
    def stream(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Upscale uint8 `(H, W, 3)` frames as they arrive; yields exactly one uint8 frame per input."""
        for chunk in self.stream_chunks(frames):
            yield from to_frames(chunk)

    def stream_float(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        """As `stream`, but yields the float `(3, H', W')` frames (in [0, 1], as `upscale_clip`
        leaves them) for a consumer that quantizes them itself (`VideoWriter` converts them
        straight to YUV)."""
        for chunk in self.stream_chunks(frames):
            yield from chunk

    def fixed_windows(self) -> bool:
        """Every window the same length: temporal models whose runtime is (or may become) a
        fixed-length graph; otherwise the last window of a video is only as long as it needs."""
        return self.temporal and self.runtime.fixed_frames()

    def resume_start(self, done: int, num_frames: int, width: int, height: int) -> int:
        """The first input frame `stream_chunks(frames, done=done)` needs to continue a run over
        `num_frames` frames of `width` x `height` after its window that ended at frame `done`
        (the same windows, so the same output, as a run from frame 0)."""
        chunk = self.fit_chunk(width, height)
        return max(0, min(done - self.overlap, num_frames - chunk - 2 * self.overlap))

    def stream_chunks(self, frames: Iterable[np.ndarray | torch.Tensor], done: int = 0,
                      first: int = 0) -> Iterator[torch.Tensor]:
        """Upscale frames (uint8 `(H, W, 3)` arrays or float `(3, H, W)` tensors) as they arrive,
        yielding float chunks `(T, 3, H', W')` that together hold one output per input frame.
        Each chunk is one window's kept frames.

        Temporal models run on windows of `chunk + 2 * overlap` frames (`vsr.inference.windows`:
        every kept frame has `overlap` frames of context on each side, every call the same length),
        so at most `2 * chunk + 2 * overlap + 1` input frames are held at once. To continue a run
        whose windows ended at frame `done`, give `done` and the frames from `first` =
        `resume_start(...)` on: the output starts at frame `done`.
        """
        buffer: list = []  # buffer[0] is frame `first` of the video; `done` frames were yielded
        raw, raw_from = torch.empty(0), first  # the model's output of frames raw_from... in the last window
        finished = False
        iterator = iter(frames)
        while not finished:
            frame = next(iterator, None)
            finished = frame is None
            if frame is not None:
                if not buffer:  # the first frame: its size sets chunk=auto's length
                    height, width = frame.shape[-2:] if isinstance(frame, torch.Tensor) else frame.shape[:2]
                    self.chunk = self.fit_chunk(width, height)
                buffer.append(frame)
            while (window := next_window(done, first + len(buffer), finished, self.chunk, self.overlap,
                                         fixed=self.fixed_windows())) is not None:
                lo, start, stop, hi = window
                clip = to_tensor(buffer[lo - first: hi - first])
                # a single-frame model computed the first frame the filters read (and maybe the next) last window
                wide_from = self.filter_reads(start, stop, lo, hi).start
                reused = raw[wide_from - raw_from:] if not self.temporal and raw_from <= wide_from else None
                with self.progress.piece(stop - start) if self.progress else nullcontext():
                    out, raw = self._upscale(clip, slice(start - lo, stop - lo), reused)
                raw_from = wide_from
                yield out
                done = stop
                drop = oldest_needed(done, first + len(buffer), self.chunk, self.overlap, self.fixed_windows()) - first
                del buffer[:drop]
                first += drop
