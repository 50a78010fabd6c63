"""Ways to run a generator on a clip: eager PyTorch (optionally channels_last), ONNX Runtime, OpenVINO,
ncnn, and a recurrent model as two graphs. Used by inference (`vsr.inference.runtime` picks one) and by
export (each export's parity check).

Every runner maps a clip `(B, T, 3, H, W)` float32 in [0, 1] and the frames to `keep` (a slice of
T; a window's other frames are context) to `(B, T', 3, sH, sW)`, the outputs of the kept frames.
"""

import copy
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vsr.models.descriptor import describe
from vsr.runtimes.cache import cache_root
from vsr.work import frame_done

# LR pixels per call of a single-frame model (at least one frame a call): its activations then stay in
# the CPU's caches (experiments/benchmarks.md, "Single-frame models a few frames a call").
FRAME_GROUP_PIXELS = 64 * 1024


def fill_clip(frames: Iterable[torch.Tensor], lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Output frames `(B, 3, sH, sW)` of the LR frames `lr` `(B, T, 3, H, W)`, written into one
    contiguous `(B, T, 3, sH, sW)` tensor as they come: a list and a stack would hold every output
    twice (and a channels_last stack would need a third copy to be read frame by frame). Each frame
    counts as done for the progress bar (`vsr.inference.progress`) as it comes."""
    b, t, _, h, w = lr.shape
    out = None
    for j, frame in enumerate(frames):
        if out is None:
            out = frame.new_empty((b, t, *frame.shape[1:]))  # contiguous, whatever the frame's layout
        out[:, j] = frame
        frame_done(t)
    return lr.new_empty((b, 0, 3, h * scale, w * scale)) if out is None else out

def run_recurrent(model: nn.Module, clip: torch.Tensor, keep: slice, scale: int) -> torch.Tensor:
    """A recurrent model with `kept_states` / `reconstruct` (`vsr.models.RecurrentRRDBNet`) on `clip`
    -> its frames `keep`, reconstructed one at a time (context frames only propagate)."""
    frames = (model.reconstruct(hidden, clip[:, i])  # type: ignore[operator]  # nn.Module types its attributes
              for i, hidden in model.kept_states(clip, keep))  # type: ignore[operator]  # as Tensor | Module
    return fill_clip(frames, clip[:, keep], scale)


ALL = slice(None)


class Runner:
    """A way to run the model; `__call__(clip, keep)` and `accepts(clip)`."""

    name = "runner"

    def accepts(self, clip: torch.Tensor) -> bool:
        return True

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        raise NotImplementedError


class TorchRunner(Runner):
    """Eager PyTorch, optionally with channels_last weights (convolutions then run NHWC in oneDNN)."""

    def __init__(self, model: nn.Module, channels_last: bool = False):
        self.name = "channels_last" if channels_last else "eager"
        self.model = copy.deepcopy(model).to(memory_format=torch.channels_last) if channels_last else model

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        with torch.inference_mode():
            if describe(self.model).partial_reconstruction:  # context frames are not reconstructed
                return run_recurrent(self.model, clip, keep, getattr(self.model, "scale", 1))
            # single-frame models: FrameGroups copies each output frame into one contiguous clip (a
            # channels_last output interleaves the frames pixel by pixel, and every later per-frame
            # pass, ensemble sum or uint8 conversion, would read the whole clip; experiments/benchmarks.md)
            return self.model(clip)[:, keep]


class FrameGroups(Runner):
    """A single-frame model's runner called on groups of frames of at most `FRAME_GROUP_PIXELS` LR
    pixels (one frame at least) instead of the whole clip; outputs written into one clip tensor."""

    def __init__(self, runner: Runner, scale: int, pixels: int = FRAME_GROUP_PIXELS):
        self.runner, self.scale, self.pixels, self.name = runner, int(scale), int(pixels), runner.name
        self.shape = getattr(runner, "shape", None)
        self.unchecked = getattr(runner, "unchecked", None)

    def group(self, clip: torch.Tensor) -> int:
        return max(1, self.pixels // (clip.shape[0] * clip.shape[-2] * clip.shape[-1]))

    def accepts(self, clip: torch.Tensor) -> bool:
        return self.runner.accepts(clip[:, : self.group(clip)])

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        clip = clip[:, keep]  # single-frame models: the other frames are not needed
        k = self.group(clip)
        parts = (self.runner(clip[:, start:start + k]) for start in range(0, clip.shape[1], k))
        return fill_clip((frame for part in parts for frame in part.unbind(1)), clip, self.scale)


class NcnnRunner(Runner):
    """An ncnn model with blobs `data` -> `output` (RGB [0, 1]), one frame at a time, on the CPU."""

    name = "ncnn"

    def __init__(self, param: str | Path, weights: str | Path, threads: int | None = None):
        import ncnn

        self.ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = int(threads or torch.get_num_threads())
        if self.net.load_param(str(param)) or self.net.load_model(str(weights)):
            raise RuntimeError(f"ncnn cannot load {param} / {weights}")

    def frame(self, x: np.ndarray) -> np.ndarray:
        ex = self.net.create_extractor()
        # ncnn.Mat wraps the array's memory without copying: keep the contiguous copy alive until
        # extract() (a temporary freed here made transposed inputs read freed memory)
        data = np.ascontiguousarray(x, dtype=np.float32)
        ex.input("data", self.ncnn.Mat(data))
        ret, out = ex.extract("output")
        if ret:
            raise RuntimeError(f"ncnn extract failed ({ret})")
        return np.array(out)

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        clip = clip[:, keep]  # single-frame models only: the other frames are not needed
        b, t = clip.shape[:2]
        frames = clip.detach().float().cpu().reshape(b * t, *clip.shape[2:]).numpy()
        out = np.stack([self.frame(f) for f in frames])
        return torch.from_numpy(out).reshape(b, t, *out.shape[1:])


class GraphRunner(Runner):
    """An ONNX graph in a runtime: `run(*inputs)` feeds its inputs in order; as a runner of a whole
    model it maps the clip (input `lr`) and keeps frames `keep` of the output. Fixed axes are checked."""

    shape: list  # the first input's axes: ints where fixed, None where dynamic

    def accepts(self, clip: torch.Tensor) -> bool:
        return len(self.shape) == clip.ndim and all(d is None or d == n for d, n in zip(self.shape, clip.shape))

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        return self.run(clip)[:, keep]


def as_arrays(inputs) -> list[np.ndarray]:
    return [x.detach().float().cpu().contiguous().numpy() for x in inputs]


class OnnxRunner(GraphRunner):
    """ONNX Runtime (CPU provider)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.shape = [d if isinstance(d, int) else None for d in self.session.get_inputs()[0].shape]

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, dict(zip(self.inputs, as_arrays(inputs))))[0])


def import_openvino():
    """`import openvino`, with OpenVINO's own telemetry stub in place of the openvino-telemetry package: its
    import event is sent from a process forked off this one, and a fork taken while PyAV's decoder threads
    run can hang, with this process waiting for it at exit (a CI run, 2026-12-07); it is a network call too."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # None: its import fails, and OpenVINO uses the stub
    import openvino

    return openvino


class OpenvinoRunner(GraphRunner):
    """OpenVINO on the CPU from an ONNX file, fp32 (its default on bf16-capable CPUs would be bf16;
    `precision="bf16"` is for benchmarks)."""

    name = "openvino"

    def __init__(self, path: str | Path, threads: int | None = None, precision: str = "f32"):
        core = import_openvino().Core()
        try:  # compiled graphs are cached (OpenVINO keys them by model and settings): start-up once
            core.set_property({"CACHE_DIR": str(cache_root() / "openvino")})
        except RuntimeError:
            pass
        self.compiled = core.compile_model(str(path), "CPU", {
            "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()), "INFERENCE_PRECISION_HINT": precision})
        shape = self.compiled.input(0).get_partial_shape()
        self.shape = [d.get_length() if d.is_static else None for d in shape]

    def run(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.compiled(as_arrays(inputs))[0])  # share_outputs=False (default): a copy


class SkipAddedRunner(Runner):
    """A single-frame model whose network part (`lr_residual`) runs as a graph, in bf16 in OpenVINO,
    and whose bicubic skip, the sum and the PixelShuffle run in PyTorch in fp32 (`add_skip`): rounding
    the image itself to bf16 cost up to 0.3 dB on clean clips (experiments/benchmarks.md)."""

    def __init__(self, graph: GraphRunner, model: nn.Module):
        self.graph, self.model, self.name = graph, model, graph.name

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        clip = clip[:, keep]  # single-frame: the other frames are not needed
        b, t = clip.shape[:2]
        x = clip.reshape(b * t, *clip.shape[2:]).float()
        with torch.inference_mode():
            out = self.model.add_skip(self.graph.run(x), x)  # type: ignore[operator]  # nn.Module attribute
        return out.reshape(b, t, *out.shape[1:])


class SplitGraphRunner(Runner):
    """A recurrent model as two graphs (`export.py formats=[onnx_split]`): `propagate` maps the clip
    `lr` to every frame's hidden state, `reconstruct` maps frames `(N, 3, H, W)` and their states to
    outputs, so context frames of a window are propagated through but never reconstructed."""

    def __init__(self, propagate: GraphRunner, reconstruct: GraphRunner, scale: int):
        self.propagate, self.reconstruct, self.scale = propagate, reconstruct, int(scale)
        self.name, self.shape = propagate.name, propagate.shape

    def accepts(self, clip: torch.Tensor) -> bool:
        return self.propagate.accepts(clip)

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        states, frames = self.propagate.run(clip)[:, keep], clip[:, keep]
        # frame by frame: a batch of 28 720p outputs would be one more window copy
        return fill_clip((self.reconstruct.run(frames[:, j], states[:, j]) for j in range(frames.shape[1])),
                         frames, self.scale)
