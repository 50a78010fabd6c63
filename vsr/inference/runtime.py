"""Run a generator with the fastest runtime this device has: eager, channels_last, ONNX Runtime,
OpenVINO, ncnn.

`Upscaler(runtime="auto")` (upscale.py's default) wraps its model in an `AutoRuntime`:

- on CUDA / MPS, or with bf16 / fp16 precision: eager PyTorch (autocast does the work);
- on the CPU in fp32, on its first call it times each available candidate on a probe cut from
  that call's clip (a quarter of it: single-frame models a quarter of the frames at full size,
  recurrent ones a quarter-area centre crop), in two rounds over the candidates of a warm-up and a
  timed run each (this machine's speed drifts over seconds), and from then on uses the fastest per
  pixel; clips the chosen runtime cannot take go to the fastest PyTorch one. Candidates: `eager`,
  `channels_last`, and for single-frame models `onnxruntime`, `openvino` (fp32, from the same ONNX
  file) and `ncnn` (exported through pnnx); recurrent models get the ONNX ones when their export
  folder has model.propagate.onnx + model.reconstruct.onnx (`formats=[onnx_split]`, preferred:
  context frames of a window are not reconstructed) or model.onnx, and only for clips of the frame
  count those graphs were exported with (a video shorter than the graph, or another `chunk=`, could
  not run on them, so timing them would choose a runtime that never runs). `notify` says what
  it does (upscale.py: lines above its progress bar). Exports are cached under
  `$VSR_CACHE` (default `~/.cache/vsrlab/runtimes/<hash of the weights>/`), so they are paid once
  per model: each export is written under a temporary name and renamed, then its files' sha256, size
  and mtime are recorded (`verified.json`); a cached file that no longer matches its record has its
  output compared with PyTorch's again on the first clip before it is used (also for a remembered
  choice or an explicit `runtime=`), and is removed and exported afresh if it differs. A model folder
  from `export.py formats=[ncnn,onnx]` is used as it is (model.json holds its hashes). The choice
  itself is remembered there too (`auto/<threads, clip shape, candidates for that shape>.json`), so a second run
  of the same model on the same kind of clip starts without timing; delete the file to re-time.
- inputs smaller than `MIN_AUTO_PIXELS` LR pixels per call (tests, thumbnails) stay eager: the
  exports would cost more than they save;
- a runtime that is missing (package not installed), fails to export, or raises on a call is
  dropped with its reason in `report()`, and the call is rerun eagerly: a fallback, never an error.

Every runner maps a clip `(B, T, 3, H, W)` float32 in [0, 1] and the frames to `keep` (a slice of
T; a window's other frames are context) to `(B, T', 3, sH, sW)`, the outputs of the kept frames.
"""

import json
import logging
import time
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from vsr.errors import UserError
from vsr.runtimes.cache import cache_root, cached_runner, exported, record_verified, shown, weights_key
from vsr.runtimes.graphs import export_ncnn_files, export_onnx_file
from vsr.runtimes.model_files import NCNN_BIN, NCNN_PARAM, ONNX_FILE, PROPAGATE_FILE, RECONSTRUCT_FILE
from vsr.runtimes.runners import (
    ALL,
    FrameGroups,
    NcnnRunner,
    OnnxRunner,
    OpenvinoRunner,
    Runner,
    SplitGraphRunner,
    TorchRunner,
)
from vsr.work import part

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "eager", "channels_last", "onnxruntime", "openvino", "ncnn")
MIN_AUTO_PIXELS = 256 * 256  # LR pixels per call (B*T*H*W) below which auto stays eager
# A runtime whose output on the probe differs from PyTorch's by more than this (a quarter of an 8-bit
# level) is not used, however fast: a wrong export must never win on speed.
PARITY_TOLERANCE = 1e-3


def onnx_clip_frames(folder: str | Path | None) -> int | None:
    """The fixed frame count of the export folder's ONNX graphs (recurrent graphs are unrolled in
    time: model.propagate.onnx, else model.onnx), from model.json; None when there is none or its
    frame axis is dynamic."""
    try:
        meta = json.loads((Path(folder) / "model.json").read_text()) if folder is not None else {}
    except (OSError, ValueError):
        return None  # no export folder here: the model's loader reports a bad one
    formats = meta.get("formats", {})
    shape = (formats.get("onnx_split") or formats.get("onnx") or {}).get("input", {}).get("shape") or []
    return shape[1] if len(shape) == 5 and isinstance(shape[1], int) else None


def make_runner(name: str, model: nn.Module, temporal: bool, folder: Path | None = None,
                threads: int | None = None) -> Runner:
    """Build runner `name` for `model`; exported files are read from `folder` when there,
    else written to the cache; single-frame models' runners take a few frames a call (`FrameGroups`).
    Raises (ImportError, UserError, RuntimeError) when not possible."""
    runner = _make_runner(name, model, temporal, folder, threads)
    return runner if temporal else FrameGroups(runner, getattr(model, "scale", 1))


def _make_runner(name: str, model: nn.Module, temporal: bool, folder: Path | None, threads: int | None) -> Runner:
    if name == "eager":
        return TorchRunner(model)
    if name == "channels_last":
        return TorchRunner(model, channels_last=True)
    cache = None

    def cached() -> Path:
        nonlocal cache
        if cache is None:
            cache = cache_root() / weights_key(model)
        return cache

    if name == "ncnn":
        import ncnn  # noqa: F401  (missing runtime: ImportError before any export work)

        if exported(folder, "ncnn", NCNN_PARAM):
            return NcnnRunner(folder / NCNN_PARAM, folder / NCNN_BIN, threads)
        if temporal:
            raise UserError("ncnn runs single-frame models only")
        return cached_runner(lambda: NcnnRunner(cached() / NCNN_PARAM, cached() / NCNN_BIN, threads), cached(),
                             (NCNN_PARAM, NCNN_BIN), lambda work: export_ncnn_files(model, work))
    if name in ("onnxruntime", "openvino"):
        runner = OnnxRunner if name == "onnxruntime" else OpenvinoRunner
        __import__(name)  # missing runtime: ImportError before any export work
        if temporal and exported(folder, "onnx_split", PROPAGATE_FILE):
            return SplitGraphRunner(runner(folder / PROPAGATE_FILE, threads), runner(folder / RECONSTRUCT_FILE, threads),
                                    model.scale)
        if exported(folder, "onnx", ONNX_FILE):
            return runner(folder / ONNX_FILE, threads)
        if temporal:
            raise UserError(f"{name} for recurrent models needs an export folder from export.py formats=[onnx_split] "
                            "(or [onnx])")
        return cached_runner(lambda: runner(cached() / ONNX_FILE, threads), cached(), (ONNX_FILE,),
                             lambda work: export_onnx_file(model, work))
    raise UserError(f"runtime={name} is not one of: {', '.join(RUNTIMES)}")


# selection ----------------------------------------------------------------------------------
class AutoRuntime:
    """Callable clip -> clip that picks its runner (see the module docstring).

    Args:
        model: the generator (eager fallback, and the source of exports).
        temporal: recurrent model (ncnn / on-the-fly ONNX are skipped).
        device: torch device the model is on.
        precision: "fp32" explores; "bf16" / "fp16" stay eager (autocast).
        runtime: "auto" or one runtime name (then only that one, eager as fallback).
        folder: export folder holding model.ncnn.param / model.onnx / model.propagate.onnx, if any.
        trials: rounds over the candidates, each a warm-up and a timed run on the probe.
    """

    def __init__(self, model: nn.Module, temporal: bool, device: torch.device, precision: str = "fp32",
                 runtime: str = "auto", folder: str | Path | None = None, trials: int = 2,
                 min_pixels: int = MIN_AUTO_PIXELS):
        if runtime not in RUNTIMES:
            raise UserError(f"runtime={runtime} is not one of: {', '.join(RUNTIMES)}")
        self.model, self.temporal, self.device = model, temporal, torch.device(device)
        self.precision, self.runtime, self.trials, self.min_pixels = precision, runtime, int(trials), min_pixels
        self.folder = Path(folder) if folder else None
        self.eager = make_runner("eager", model, temporal)
        self.dropped: dict[str, str] = {}
        self.timings: dict[str, list[float]] = {}
        self.chosen: Runner | None = None
        self.pending: list[str] | None = None  # candidates, in the order they are tried
        self.runners: dict[str, Runner] = {"eager": self.eager}
        self.fallback: Runner = self.eager  # for clips the chosen runner does not accept
        self.recalled = False  # the choice came from an earlier run's timings
        self.calls: Counter[str] = Counter()  # model calls each runner actually ran
        self.notify = log.info  # says what preparing the runtime does (upscale.py: a line above its bar)
        self.prepare_seconds = 0.0  # spent choosing: exports, compiling, timing probes
        if self.device.type != "cpu" or precision != "fp32":
            if runtime not in ("auto", "eager"):
                self.dropped[runtime] = f"needs the CPU in fp32 (device {self.device.type}, {precision})"
            self.chosen = self.eager
        elif runtime == "eager":
            self.chosen = self.eager

    def candidates(self, frames: int | None = None) -> list[str]:
        """The runtimes to time (for clips of `frames` frames: a recurrent model's ONNX graphs only
        when their frame count, fixed at export, is the clip's: they could not run it otherwise)."""
        if self.runtime != "auto":
            return [self.runtime]
        names = ["eager", "channels_last"]
        graphs = exported(self.folder, "onnx_split", PROPAGATE_FILE) or exported(self.folder, "onnx", ONNX_FILE)
        if not self.temporal or graphs and (frames is None or onnx_clip_frames(self.folder) in (None, frames)):
            names += ["onnxruntime", "openvino"]
        if not self.temporal:
            names.append("ncnn")
        return names

    @property
    def name(self) -> str:
        return self.chosen.name if self.chosen is not None else "eager"  # nothing timed yet: small calls run eagerly

    def fixed_frames(self) -> bool:
        """Whether calls should keep one clip length: until a runtime is chosen (the first window
        decides), and when the chosen one is a graph with a fixed frame count."""
        if self.chosen is None:
            return True
        shape = getattr(self.chosen, "shape", None)
        return bool(shape) and len(shape) == 5 and isinstance(shape[1], int)

    def report(self) -> dict:
        """Chosen runtime, seconds per megapixel of each one tried, and why others were dropped."""
        return {"runtime": self.name, "timed_earlier": self.recalled,
                "seconds_per_mpixel": {k: round(min(v) * 1e6, 4) for k, v in self.timings.items() if v},
                "dropped": dict(self.dropped)}

    def _build(self, name: str) -> Runner | None:
        if name in self.runners:
            return self.runners[name]
        try:
            runner = make_runner(name, self.model, self.temporal, self.folder)
        except Exception as err:  # missing package, failed export: fall back silently, remember why
            self.dropped[name] = f"{type(err).__name__}: {err}".splitlines()[0][:200]
            log.info("runtime %s unavailable: %s", name, self.dropped[name])
            return None
        self.runners[name] = runner
        return runner

    def _run(self, runner: Runner, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor | None:
        try:
            return runner(clip, keep)
        except Exception as err:
            self.dropped[runner.name] = f"{type(err).__name__}: {err}".splitlines()[0][:200]
            self.runners.pop(runner.name, None)
            log.info("runtime %s failed, falling back: %s", runner.name, self.dropped[runner.name])
            return None

    def __call__(self, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        """The outputs of frames `keep` of `clip` (all by default)."""
        if self.chosen is None and clip.numel() // 3 < self.min_pixels and self.runtime == "auto":
            return self._counted(self.eager, clip, keep)  # too small to be worth exploring (or exporting) yet
        if self.chosen is None:
            started = time.perf_counter()
            with part(0):  # probes and exports are no frames of the video: the progress bar waits
                self._prepare(clip)
            self.prepare_seconds += time.perf_counter() - started
        if self.chosen is not self.eager and self.chosen.accepts(clip):
            out = self._run(self.chosen, clip, keep)
            if out is not None:
                self.calls[self.chosen.name] += 1
                return out
            self.chosen = self.eager
        return self._counted(self.fallback, clip, keep)  # e.g. a clip length the ONNX graph was not exported for

    def _prepare(self, clip: torch.Tensor) -> None:
        """Choose the runner for clips like `clip`: the one asked for, else an earlier run's choice,
        else time the candidates."""
        if self.runtime != "auto":  # one runtime asked for: it, else eager
            self.pending = [self.runtime]
            runner = self._build(self.runtime)
            self.chosen = runner if runner is not None and self._checked(runner, clip) else self.eager
            if self.chosen.name != self.runtime:
                self.notify(f"runtime={self.runtime} not used ({self.dropped.get(self.runtime)}): eager")
        elif not self._recall(clip):
            self._explore(clip)
            self._remember(clip)

    def _counted(self, runner: Runner, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor:
        self.calls[runner.name] += 1
        return runner(clip, keep)

    @property
    def ran(self) -> str:
        """The runtimes that ran this object's calls, most calls first (`openvino+channels_last` when
        windows the chosen fixed-length graph cannot take ran on the fallback); `name` if none ran."""
        return "+".join(name for name, _ in self.calls.most_common()) or self.name

    def _memo(self, clip: torch.Tensor) -> Path:
        """Where the choice for clips like `clip` on this many threads is remembered."""
        shape, candidates = "x".join(map(str, clip.shape)), "+".join(self.candidates(clip.shape[1]))
        key = f"{torch.get_num_threads()}t-{shape}-{candidates}"  # the runtimes timed for this shape, no others
        return cache_root() / weights_key(self.model) / "auto" / f"{key}.json"

    def _recall(self, clip: torch.Tensor) -> bool:
        """Use the runtimes an earlier run timed for this model and clip shape, if they still build."""
        if self.runtime != "auto":
            return False
        path = self._memo(clip)
        try:
            memo = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        chosen, fallback = self._build(memo.get("runtime", "")), self._build(memo.get("fallback", ""))
        # a choice that cannot run this clip (remembered before graphs were matched to clip lengths) is timed again
        if chosen is None or fallback is None or not chosen.accepts(clip) or not self._checked(chosen, clip):
            return False
        self.chosen, self.fallback, self.recalled = chosen, fallback, True
        self.timings = {k: [v / 1e6] for k, v in memo.get("seconds_per_mpixel", {}).items()}
        self.notify(f"runtime: {chosen.name}, {self.speeds(clip)} (timed by an earlier run: {shown(path)}; "
                    "delete it to time again)")
        return True

    def speeds(self, clip: torch.Tensor) -> str:
        """The timings as frames per second of `clip`'s size, fastest first."""
        h, w = clip.shape[-2:]
        rates = sorted(((1 / (min(v) * h * w), k) for k, v in self.timings.items() if v), reverse=True)
        return f"frames/s at {w}x{h} a model pass: " + ", ".join(f"{k} {r:.3g}" for r, k in rates)

    def _remember(self, clip: torch.Tensor) -> None:
        try:
            path = self._memo(clip)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({**self.report(), "fallback": self.fallback.name}, indent=1))
        except OSError:
            pass  # a read-only cache only means timing again next time

    def _probe(self, runner: Runner, clip: torch.Tensor) -> torch.Tensor | None:
        """A quarter of `clip` in a shape `runner` takes, or None: for single-frame models its first
        quarter of the frames at full size (per-pixel speed depends on the frame size: on
        quarter-area crops ncnn timed faster than OpenVINO, on 320x180 frames it is 25% slower),
        else a quarter-area centre crop (frames repeated up to the fixed clip length of an ONNX
        graph; every runtime of a recurrent model gets the same clip length)."""
        if not self.temporal and clip.ndim == 5 and clip.shape[1] >= 4 and runner.accepts(clip[:, : clip.shape[1] // 4]):
            return clip[:, : clip.shape[1] // 4]
        h, w = clip.shape[-2:]
        ch, cw = min(h, max(64, h // 2 // 8 * 8)), min(w, max(64, w // 2 // 8 * 8))
        top, left = (h - ch) // 2 // 2 * 2, (w - cw) // 2 // 2 * 2
        crop = clip[..., top:top + ch, left:left + cw]
        if runner.accepts(crop):
            return crop
        fixed = getattr(runner, "shape", None)
        if fixed and len(fixed) == clip.ndim and isinstance(fixed[1], int):
            b = fixed[0] if isinstance(fixed[0], int) else crop.shape[0]
            probe = crop[:1, torch.arange(fixed[1]) % crop.shape[1]].expand(b, -1, -1, -1, -1).contiguous()
            if runner.accepts(probe):
                return probe
        return None

    def _agrees(self, runner: Runner, probe: torch.Tensor, out: torch.Tensor, references: dict) -> bool:
        """Whether `runner`'s output on the probe matches PyTorch eager's (computed once per probe
        shape, kept in `references`); if not, the runner is dropped."""
        key = tuple(probe.shape)  # probes of one shape are the same crop of the same clip
        if runner is self.eager:
            references[key] = out
            return True
        if key not in references:
            with torch.inference_mode():
                references[key] = self.eager(probe)
        diff = float((out.float() - references[key].float()).abs().max())
        unchecked = getattr(runner, "unchecked", None)  # cached files changed since they were checked
        if diff <= PARITY_TOLERANCE:
            if unchecked:
                record_verified(*unchecked)
                runner.unchecked = None
            return True
        self.dropped[runner.name] = f"output differs from PyTorch by {diff:.1e} (> {PARITY_TOLERANCE:g}) on this clip"
        self.runners.pop(runner.name, None)
        for name in unchecked[1] if unchecked else ():  # exported afresh by the next run
            (unchecked[0] / name).unlink(missing_ok=True)
        log.warning("runtime %s not used: %s", runner.name, self.dropped[runner.name])
        return False

    def _checked(self, runner: Runner, clip: torch.Tensor) -> bool:
        """Whether `runner` may be used without timing: yes, unless it runs cached files that changed
        since they were checked and its output on a probe of `clip` now differs from PyTorch's."""
        if not getattr(runner, "unchecked", None):
            return True
        probe = self._probe(runner, clip)
        out = None if probe is None else self._run(runner, probe)
        return out is not None and self._agrees(runner, probe, out, {})

    def _explore(self, clip: torch.Tensor) -> None:
        """Time every candidate on a probe cut from `clip`, keep the fastest per pixel, and the
        fastest PyTorch one as the fallback. `trials` rounds over the candidates, each a warm-up run
        right before a timed one: rounds, because this machine's speed drifts over the seconds this
        takes (one pass would favour whichever ran while it was fast); the warm-up next to each timed
        run, because a runtime that has sat idle while the others ran starts cold (its thread pool,
        its caches), which real use, one runtime call after another, does not."""
        started, (h, w) = time.perf_counter(), clip.shape[-2:]
        if self.pending is None:
            self.pending = self.candidates(clip.shape[1])
            for name in [n for n in self.candidates() if n not in self.pending]:  # not even built: it cannot run the clip
                self.dropped[name] = (f"its ONNX graph takes {onnx_clip_frames(self.folder)} frames a call, "
                                      f"these calls have {clip.shape[1]}")
        self.notify(f"timing runtimes for {w}x{h}, {clip.shape[1]} frames a call: {', '.join(self.pending)} "
                    f"(once per model and size; remembered in {shown(cache_root())})")
        references: dict = {}  # eager's output per probe shape, for the parity check
        probes: dict[str, torch.Tensor] = {}
        for name in self.pending:
            runner = self._build(name)
            if runner is None:
                continue
            probe = self._probe(runner, clip)
            if probe is None:
                self.dropped[name] = f"takes no clip of shape like {tuple(clip.shape)}"
                continue
            probes[name] = probe
        for trial in range(self.trials):
            for name, probe in probes.items():
                runner = self.runners.get(name)
                if runner is None:
                    continue  # failed or disagreed earlier
                out = self._run(runner, probe)  # warm-up: allocations, session start, weight transforms
                if out is None or (trial == 0 and not self._agrees(runner, probe, out, references)):
                    continue
                start = time.perf_counter()
                if self._run(runner, probe) is not None:
                    self.timings.setdefault(name, []).append((time.perf_counter() - start) / (probe.numel() / 3))
        timed = [n for n in self.pending if self.timings.get(n) and n in self.runners and n not in self.dropped]
        best = min(timed, key=lambda n: min(self.timings[n]), default="eager")
        self.chosen = self.runners.get(best, self.eager)
        torch_timed = [n for n in timed if n in ("eager", "channels_last")]
        fallback = min(torch_timed, key=lambda n: min(self.timings[n]), default="eager")
        self.fallback = self.runners.get(fallback, self.eager)
        for name in list(self.runners):  # free the others (an ncnn net holds its own weights)
            if name not in (best, fallback, "eager"):
                self.runners.pop(name)
        reasons: dict[str, list[str]] = {}
        for name, why in self.dropped.items():
            reasons.setdefault(why, []).append(name)
        dropped = "".join(f"; {', '.join(names)} not used: {why}" for why, names in reasons.items())
        self.notify(f"runtime: {best}, {self.speeds(clip)}{dropped} (timed in {time.perf_counter() - started:.0f} s)")
