"""Run a generator with the fastest runtime this device has: eager, channels_last, ONNX Runtime,
OpenVINO, ncnn.

`Upscaler(runtime="auto")` (upscale.py's default) wraps its model in an `AutoRuntime`, which decides
what runs each call; `vsr.runtimes.choice.RuntimeChooser` makes the choice it runs (timing, parity
with PyTorch, the remembered choice):

- on CUDA / MPS: eager PyTorch (autocast does the work); on the CPU in bf16: eager or channels_last,
  and OpenVINO in bf16 where the model's stored check passed it, timed like the fp32 candidates below;
- inputs smaller than `MIN_AUTO_PIXELS` LR pixels per call (tests, thumbnails) stay eager: the
  exports would cost more than they save;
- on the CPU in fp32, the first larger call has the chooser pick a runtime for clips like it (the
  one asked for with `runtime=`, else the fastest timed); `notify` says what it does (upscale.py:
  lines above its progress bar). Exports are cached under `$VSR_CACHE` (default
  `~/.cache/vsrlab/runtimes/<hash of the weights>/`, verified: `vsr.runtimes.cache`); an export
  folder from `export.py formats=[ncnn,onnx]` is used as it is (model.json holds its hashes);
- the fallback: clips the chosen runtime does not take (another clip length than its fixed-length
  graph) run on the fastest PyTorch runtime, and a runtime that raises on a call is dropped with
  its reason in `report()` and the call is rerun eagerly, never an error.

Every runner maps a clip `(B, T, 3, H, W)` float32 in [0, 1] and the frames to `keep` (a slice of
T; a window's other frames are context) to `(B, T', 3, sH, sW)`, the outputs of the kept frames.
"""

import logging
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from vsr.errors import UserError
from vsr.inference.precision import check_key, check_passed
from vsr.runtimes.choice import BF16_GRAPH_RUNTIMES, TORCH_RUNTIMES, Choice, RuntimeChooser
from vsr.runtimes.factory import RUNTIMES
from vsr.runtimes.runners import ALL, Runner
from vsr.work import part

log = logging.getLogger(__name__)

MIN_AUTO_PIXELS = 256 * 256  # LR pixels per call (B*T*H*W) below which auto stays eager


class AutoRuntime:
    """Callable clip -> clip that runs the chosen runner, else its fallback (see the module docstring).

    Args:
        model: the generator (eager fallback, and the source of exports).
        temporal: recurrent model (ncnn / on-the-fly ONNX are skipped).
        device: torch device the model is on.
        precision: "fp32" chooses among every runtime; "bf16" on the CPU among PyTorch's (autocast) and
            OpenVINO's bf16 where the model's stored check passed it (`precision_check.json`, `bf16_openvino`).
        runtime: "auto" or one runtime name (then only that one, eager as fallback).
        folder: export folder holding model.ncnn.param / model.onnx / model.propagate.onnx, if any.
        trials: rounds over the candidates, each a warm-up and a timed run on the probe.
        min_pixels: calls below this many LR pixels run eagerly without choosing.
    """

    def __init__(self, model: nn.Module, temporal: bool, device: torch.device, precision: str = "fp32",
                 runtime: str = "auto", folder: str | Path | None = None, trials: int = 2,
                 min_pixels: int = MIN_AUTO_PIXELS):
        if runtime not in RUNTIMES:
            raise UserError(f"runtime={runtime} is not one of: {', '.join(RUNTIMES)}")
        # a graph runtime computing in bf16 itself is a candidate where the model's stored check passed it
        graphs = tuple(name for name in BF16_GRAPH_RUNTIMES if check_passed(folder, check_key(precision, name)))
        self.chooser = RuntimeChooser(model, temporal, runtime, Path(folder) if folder else None, int(trials),
                                      precision=precision, low_precision_graphs=graphs)
        self.min_pixels, self.device = min_pixels, torch.device(device)
        self.choice: Choice | None = None
        self.calls: Counter[str] = Counter()  # model calls each runner actually ran
        # autocast (bf16 on the CPU) reaches PyTorch's runtimes only; on a GPU eager does the work
        usable: tuple[str, ...] = RUNTIMES if precision == "fp32" else ("auto", *TORCH_RUNTIMES, *BF16_GRAPH_RUNTIMES)
        if self.device.type != "cpu":
            usable = ("auto", "eager")
        if runtime not in usable:
            self.chooser.dropped[runtime] = f"needs the CPU in fp32 (device {self.device.type}, {precision})"
        if runtime not in usable or runtime == "eager" or self.device.type != "cpu":
            self.choice = Choice(self.eager, self.eager)

    @property
    def eager(self) -> Runner:
        return self.chooser.eager

    @property
    def notify(self):
        return self.chooser.notify

    @notify.setter
    def notify(self, say) -> None:
        self.chooser.notify = say  # upscale.py: a line above its progress bar

    @property
    def chosen(self) -> Runner | None:
        """The runner calls go to; None until the first call large enough to choose on."""
        return self.choice.runner if self.choice else None

    @property
    def recalled(self) -> bool:
        return bool(self.choice and self.choice.recalled)

    @property
    def prepare_seconds(self) -> float:
        """Spent choosing: exports, compiling, timing probes."""
        return self.choice.seconds if self.choice else 0.0

    @property
    def name(self) -> str:
        return self.chosen.name if self.chosen is not None else "eager"  # nothing chosen yet: small calls run eagerly

    @property
    def ran(self) -> str:
        """The runtimes that ran this object's calls, most calls first (`openvino+channels_last` when
        windows the chosen fixed-length graph cannot take ran on the fallback); `name` if none ran."""
        return "+".join(name for name, _ in self.calls.most_common()) or self.name

    def fixed_frames(self) -> bool:
        """Whether calls should keep one clip length: until a runtime is chosen (the first window
        decides), and when the chosen one is a graph with a fixed frame count."""
        if self.chosen is None:
            return True
        shape = getattr(self.chosen, "shape", None)
        return shape is not None and len(shape) == 5 and isinstance(shape[1], int)

    def report(self) -> dict:
        """Chosen runtime, seconds per megapixel of each one tried, and why others were dropped."""
        return {"runtime": self.name, "timed_earlier": self.recalled, **self.chooser.report()}

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        """The outputs of frames `keep` of `clip` (all by default)."""
        if self.choice is None:
            if clip.numel() // 3 < self.min_pixels and self.chooser.runtime == "auto":
                return self._counted(self.eager, clip, keep)  # too small to be worth exploring (or exporting) yet
            with part(0):  # probes and exports are no frames of the video: the progress bar waits
                self.choice = self.chooser.choose(clip)
        runner = self.choice.runner
        if runner is not self.eager and runner.accepts(clip):
            out = self.chooser.run(runner, clip, keep)
            if out is not None:
                self.calls[runner.name] += 1
                return out
            log.info("runtime %s failed, falling back to eager", runner.name)
            self.choice.runner = self.eager
        return self._counted(self.choice.fallback, clip, keep)  # e.g. a clip length the ONNX graph was not exported for

    def _counted(self, runner: Runner, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        self.calls[runner.name] += 1
        return runner(clip, keep)
