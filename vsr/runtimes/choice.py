"""Choose the runtime for clips like a given one: the one asked for, an earlier run's remembered
choice, or the fastest of the candidates timed on a probe cut from the clip, each checked against
PyTorch eager's output first (a wrong export must never win on speed).

Candidates on the CPU in bf16 (autocast): `eager` and `channels_last` (NHWC skips oneDNN's reorders
around each convolution: 1.4-1.7x for the shipped models, the same output), and for single-frame
models whose stored check passed it `openvino` in bf16 (the network alone, the image skip in fp32:
`runners.SkipAddedRunner`; 1.4x channels_last on 640x360 frames). Candidates on the CPU in
fp32: `eager`, `channels_last`, and for single-frame models `onnxruntime`,
`openvino` (fp32, from the same ONNX file) and `ncnn` (exported through pnnx); recurrent models get the
ONNX ones when their export folder has model.propagate.onnx + model.reconstruct.onnx
(`formats=[onnx_split]`, preferred: context frames of a window are not reconstructed) or model.onnx,
and only for clips of the frame count those graphs were exported with (a video shorter than the graph,
or another `chunk=`, could not run on them, so timing them would choose a runtime that never runs).

Timing: two rounds over the candidates of a short warm-up (two frames, where a runtime takes any clip
length) and a timed run each, on a quarter of the clip
(single-frame models a quarter of the frames at full size, or fewer frames holding PROBE_PIXELS;
recurrent ones a quarter-area centre crop), eager first, then fastest first as an earlier run timed
them on the nearest other frame size, else cheapest to prepare first; choosing stops before CHOICE_SECONDS, or CHOICE_SHARE of
the job as PyTorch's timing estimates it when that is longer, would be passed: a candidate starts only
when its expected cost (its first round's, else eager's) still fits (a first export that takes longer
than eager's timing can still overrun it). The choice is remembered under
`$VSR_CACHE` (`<hash of the weights>/auto/<threads, call shape, frame-size class, candidates[, precision]>.json`,
shared by frame sizes within a factor of about 1.4) so a second run of the same model on the same kind
of clip starts without timing; delete the file to re-time. A runtime that is missing, fails to export, raises, or disagrees
with eager is dropped with its reason. What runs each call, and what happens when the chosen runtime
cannot take a clip or fails on one, is `vsr.inference.runtime.AutoRuntime`'s part.
"""

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vsr.runtimes import factory
from vsr.runtimes.cache import cache_root, record_verified, shown, weights_key
from vsr.runtimes.runners import ALL, Runner

log = logging.getLogger(__name__)

# A runtime whose output on the probe differs from PyTorch's by more than this (a quarter of an 8-bit
# level) is not used, however fast.
PARITY_TOLERANCE = 1e-3
# Under bf16 autocast another layout's kernels round differently: up to 2e-3 from eager measured (the
# shipped default, channels_last), the size of bf16's own error against fp32 (1.6-3.3e-3), which the
# model's stored bf16 check accepted. Below one 8-bit level, as the output video's pixels.
BF16_PARITY_TOLERANCE = 1 / 255
TORCH_RUNTIMES = ("eager", "channels_last")
# Graph runtimes that compute in bf16 themselves (OpenVINO's precision hint), for single-frame models
BF16_GRAPH_RUNTIMES = ("openvino",)
# Choosing costs at most this long, or CHOICE_SHARE of the job when that is longer: candidates whose
# expected cost no longer fits are skipped (eager is always timed: the fallback).
CHOICE_SECONDS, CHOICE_SHARE = 10.0, 0.05
# Single-frame models are timed on as many full frames as hold this many LR pixels (at most a quarter
# of the clip): enough to time, and large frames leave the cap room for every candidate.
PROBE_PIXELS = 2**17


@dataclass
class Choice:
    """The runner for clips like the one chosen on, and the fastest PyTorch runner for the clips it
    does not take (e.g. a clip length its ONNX graph was not exported for)."""

    runner: Runner
    fallback: Runner
    recalled: bool = False  # taken from an earlier run's timings
    seconds: float = 0.0  # spent choosing: exports, compiling, timing probes


@dataclass
class RuntimeChooser:
    """Chooses among the runtimes of `model` (see the module docstring).

    Args:
        model: the generator (eager reference, and the source of exports).
        temporal: recurrent model (ncnn / on-the-fly ONNX are skipped).
        runtime: "auto" or one runtime name (then only that one, eager if it fails).
        precision: "fp32", or "bf16" / "fp16" (autocast around the calls): then PyTorch's runtimes and
            `low_precision_graphs`.
        folder: export folder holding model.ncnn.param / model.onnx / model.propagate.onnx, if any.
        trials: rounds over the candidates, each a warm-up and a timed run on the probe.
        notify: says what choosing does (upscale.py: lines above its progress bar).
    """

    model: nn.Module
    temporal: bool
    runtime: str = "auto"
    folder: Path | None = None
    trials: int = 2
    precision: str = "fp32"
    notify: Callable[[str], None] = log.info
    dropped: dict[str, str] = field(default_factory=dict)  # runtime -> why it is not used
    timings: dict[str, list[float]] = field(default_factory=dict)  # runtime -> seconds per LR pixel, each run
    pending: list[str] | None = None  # candidates, in the order they are tried
    runners: dict[str, Runner] = field(default_factory=dict)  # built so far
    job_frames: int | None = None  # frames the whole job runs through the model (sets the time cap), if known
    low_precision_graphs: tuple[str, ...] = ()  # BF16_GRAPH_RUNTIMES the caller allows under bf16 (checked)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder) if self.folder else None
        self.eager = self.runners["eager"] = factory.make_runner("eager", self.model, self.temporal)

    def candidates(self, frames: int | None = None) -> list[str]:
        """The runtimes to time (for clips of `frames` frames: a recurrent model's ONNX graphs only
        when their frame count, fixed at export, is the clip's: they could not run it otherwise)."""
        if self.runtime != "auto":
            return [self.runtime]
        names = list(TORCH_RUNTIMES)
        if self.precision != "fp32":  # autocast reaches PyTorch's kernels; graphs that round on their own, if allowed
            return names + [name for name in self.low_precision_graphs if not self.temporal]
        fits = frames is None or factory.onnx_clip_frames(self.folder) in (None, frames)
        if not self.temporal or factory.has_onnx_graphs(self.folder) and fits:
            names += ["onnxruntime", "openvino"]
        if not self.temporal:
            names.append("ncnn")
        return names

    def choose(self, clip: torch.Tensor) -> Choice:
        """The runner for clips like `clip`: the one asked for (eager if it cannot run), else an
        earlier run's choice, else the fastest candidate timed on a probe of `clip`."""
        started = time.perf_counter()
        if self.runtime != "auto":
            runner = self.build(self.runtime)
            chosen = runner if runner is not None and self.checked(runner, clip) else self.eager
            if chosen.name != self.runtime:
                self.notify(f"runtime={self.runtime} not used ({self.dropped.get(self.runtime)}): eager")
            choice = Choice(chosen, self.eager)
        else:
            choice = self.recall(clip) or self.remember(clip, self.explore(clip))
        choice.seconds = time.perf_counter() - started
        return choice

    def report(self) -> dict:
        """Seconds per megapixel of each runtime timed, and why others were dropped."""
        return {"seconds_per_mpixel": {k: round(min(v) * 1e6, 4) for k, v in self.timings.items() if v},
                "dropped": dict(self.dropped)}

    def drop(self, name: str, err: BaseException) -> None:
        """Stop using runtime `name` (it raised `err`), remembering why."""
        self.dropped[name] = f"{type(err).__name__}: {err}".splitlines()[0][:200]
        self.runners.pop(name, None)

    def build(self, name: str) -> Runner | None:
        """Runner `name`, built once; None (and the reason in `dropped`) when it cannot be."""
        if name in self.runners:
            return self.runners[name]
        try:
            runner = factory.make_runner(name, self.model, self.temporal, self.folder, precision=self.precision)
        except Exception as err:  # missing package, failed export: not a candidate, remember why
            self.drop(name, err)
            log.info("runtime %s unavailable: %s", name, self.dropped[name])
            return None
        self.runners[name] = runner
        return runner

    def run(self, runner: Runner, clip: torch.Tensor, keep: slice = ALL) -> torch.Tensor | None:
        """`runner`'s output, or None when it raised (it is then dropped)."""
        try:
            return runner(clip, keep)
        except Exception as err:
            self.drop(runner.name, err)
            log.info("runtime %s failed: %s", runner.name, self.dropped[runner.name])
            return None

    # remembered choices ------------------------------------------------------------------------
    def memo(self, clip: torch.Tensor) -> Path:
        """Where the choice for clips like `clip` (same call shape, frame size within a factor of
        about 1.4) on this many threads is remembered."""
        h, w = clip.shape[-2:]
        calls = "x".join(map(str, clip.shape[:-2]))  # batch, frames (a fixed-length graph takes one count)
        size_class = round(math.log2(h * w))  # the same runtime wins within a factor of about 1.4 in area
        candidates = "+".join(self.candidates(clip.shape[1]))  # the runtimes timed for this shape, no others
        if self.precision != "fp32":
            candidates += f"-{self.precision}"
        key = f"{torch.get_num_threads()}t-{calls}-px2^{size_class}-{candidates}"
        return cache_root() / weights_key(self.model) / "auto" / f"{key}.json"

    def recall(self, clip: torch.Tensor) -> Choice | None:
        """The runtimes an earlier run timed for this model and clip shape, if they still build."""
        path = self.memo(clip)
        try:
            memo = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        chosen, fallback = self.build(memo.get("runtime", "")), self.build(memo.get("fallback", ""))
        # a choice that cannot run this clip (remembered before graphs were matched to clip lengths) is timed again
        if chosen is None or fallback is None or not chosen.accepts(clip) or not self.checked(chosen, clip):
            return None
        self.timings = {k: [v / 1e6] for k, v in memo.get("seconds_per_mpixel", {}).items()}
        self.notify(f"runtime: {chosen.name}, {self.speeds(clip)} (timed by an earlier run: {shown(path)}; "
                    "delete it to time again)")
        return Choice(chosen, fallback, recalled=True)

    def remember(self, clip: torch.Tensor, choice: Choice) -> Choice:
        try:
            path = self.memo(clip)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"runtime": choice.runner.name, **self.report(),
                                        "fallback": choice.fallback.name}, indent=1))
        except OSError:
            pass  # a read-only cache only means timing again next time
        return choice

    def by_earlier_speed(self, names: list[str], clip: torch.Tensor) -> list[str]:
        """`names` with eager first (the fallback and the parity reference), then fastest first as
        an earlier run timed them on the nearest other frame size (same threads and candidates), so
        that the ones likely to win are timed before the cap is spent; untimed ones keep their order."""
        mine = self.memo(clip)  # <threads>t-<calls>-px2^<size class>-<candidates>.json
        threads, calls, size, candidates = mine.stem.split("-", 3)

        def distance(path: Path) -> tuple[int, bool]:  # the nearest size class, then the same call shape
            other_calls, other_size = path.stem.split("-", 3)[1:3]
            return abs(int(other_size[4:]) - int(size[4:])), other_calls != calls

        others = sorted(p for p in mine.parent.glob(f"{threads}-*-px2^*-{candidates}.json")
                        if p != mine and p.stem.split("-", 3)[2][4:].isdigit())  # sorted: ties go the same way each run
        try:
            speeds = json.loads(min(others, key=distance).read_text())["seconds_per_mpixel"] if others else {}
        except (OSError, ValueError, KeyError):
            speeds = {}
        rest = sorted((n for n in names if n != "eager"), key=lambda n: speeds.get(n, math.inf))
        return (["eager"] if "eager" in names else []) + rest

    def speeds(self, clip: torch.Tensor) -> str:
        """The timings as frames per second of `clip`'s size, fastest first."""
        h, w = clip.shape[-2:]
        rates = sorted(((1 / (min(v) * h * w), k) for k, v in self.timings.items() if v), reverse=True)
        return f"frames/s at {w}x{h} a model pass: " + ", ".join(f"{k} {r:.3g}" for r, k in rates)

    # probes and parity -------------------------------------------------------------------------
    def probe(self, runner: Runner, clip: torch.Tensor) -> torch.Tensor | None:
        """A quarter of `clip` in a shape `runner` takes, or None: for single-frame models its first
        quarter of the frames at full size, fewer where PROBE_PIXELS are enough to time (per-pixel
        speed depends on the frame size: quarter-area crops ranked the runtimes differently from
        full frames), else a quarter-area centre crop
        (frames repeated up to the fixed clip length of an ONNX graph; every runtime of a recurrent
        model gets the same clip length)."""
        h, w = clip.shape[-2:]
        frames = min(clip.shape[1] // 4, math.ceil(PROBE_PIXELS / (h * w))) if clip.ndim == 5 else 0
        if not self.temporal and frames >= 1 and runner.accepts(clip[:, :frames]):
            return clip[:, :frames]
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

    def agrees(self, runner: Runner, probe: torch.Tensor, out: torch.Tensor, references: dict) -> bool:
        """Whether `runner`'s output on the probe matches PyTorch eager's (computed once per probe
        shape, kept in `references`); if not, the runner is dropped and its unchecked cached files removed."""
        key = tuple(probe.shape)  # probes of one shape are the same crop of the same clip
        if runner is self.eager:
            references[key] = out
            return True
        if key not in references:
            with torch.inference_mode():
                references[key] = self.eager(probe)
        diff = float((out.float() - references[key].float()).abs().max())
        unchecked = getattr(runner, "unchecked", None)  # cached files changed since they were checked
        tolerance = PARITY_TOLERANCE if self.precision == "fp32" else BF16_PARITY_TOLERANCE
        if diff <= tolerance:
            if unchecked:
                record_verified(*unchecked)
                runner.unchecked = None  # type: ignore[attr-defined]  # set by cached_runner
            return True
        self.dropped[runner.name] = f"output differs from PyTorch by {diff:.1e} (> {tolerance:.2g}) on this clip"
        self.runners.pop(runner.name, None)
        if unchecked:  # exported afresh by the next run
            folder, files = unchecked
            for name in files:
                (folder / name).unlink(missing_ok=True)
        log.warning("runtime %s not used: %s", runner.name, self.dropped[runner.name])
        return False

    def checked(self, runner: Runner, clip: torch.Tensor) -> bool:
        """Whether `runner` may be used without timing: yes, unless it runs cached files that changed
        since they were checked and its output on a probe of `clip` now differs from PyTorch's."""
        if not getattr(runner, "unchecked", None):
            return True
        probe = self.probe(runner, clip)
        out = None if probe is None else self.run(runner, probe)
        return probe is not None and out is not None and self.agrees(runner, probe, out, {})

    # timing ------------------------------------------------------------------------------------
    def explore(self, clip: torch.Tensor) -> Choice:
        """Time every candidate on a probe cut from `clip`, keep the fastest per pixel, and the
        fastest PyTorch one as the fallback. `trials` rounds over the candidates, each a warm-up run
        right before a timed one: rounds, because a machine's speed drifts over the seconds this
        takes (one pass would favour whichever ran while it was fast); the warm-up next to each timed
        run, because a runtime that has sat idle while the others ran starts cold (its thread pool,
        its caches), which real use, one runtime call after another, does not."""
        started, (h, w) = time.perf_counter(), clip.shape[-2:]
        if self.pending is None:
            self.pending = self.by_earlier_speed(self.candidates(clip.shape[1]), clip)
            for name in [n for n in self.candidates() if n not in self.pending]:  # not even built: it cannot run the clip
                self.dropped[name] = (f"its ONNX graph takes {factory.onnx_clip_frames(self.folder)} frames a call, "
                                      f"these calls have {clip.shape[1]}")
        self.notify(f"timing runtimes for {w}x{h}, {clip.shape[1]} frames a call: {', '.join(self.pending)} "
                    f"(once per model and size; remembered in {shown(cache_root())})")
        self._time(clip, started)
        timed = [n for n in self.pending if self.timings.get(n) and n in self.runners and n not in self.dropped]
        best = min(timed, key=lambda n: min(self.timings[n]), default="eager")
        fallback = min([n for n in timed if n in TORCH_RUNTIMES], key=lambda n: min(self.timings[n]), default="eager")
        choice = Choice(self.runners.get(best, self.eager), self.runners.get(fallback, self.eager))
        for name in list(self.runners):  # free the others (an ncnn net holds its own weights)
            if name not in (best, fallback, "eager"):
                self.runners.pop(name)
        reasons: dict[str, list[str]] = {}
        for name, why in self.dropped.items():
            reasons.setdefault(why, []).append(name)
        dropped = "".join(f"; {', '.join(names)} not used: {why}" for why, names in reasons.items())
        self.notify(f"runtime: {best}, {self.speeds(clip)}{dropped} (timed in {time.perf_counter() - started:.0f} s)")
        return choice

    def budget(self, clip: torch.Tensor) -> float:
        """Seconds choosing may take: CHOICE_SECONDS, or CHOICE_SHARE of the job at PyTorch's timed
        speed on clips like `clip` when that is longer (the job's size is `job_frames`)."""
        eager = self.timings.get("eager")
        if not eager or not self.job_frames:
            return CHOICE_SECONDS
        job = min(eager) * clip.shape[-2] * clip.shape[-1] * self.job_frames
        return max(CHOICE_SECONDS, CHOICE_SHARE * job)

    def _time(self, clip: torch.Tensor, started: float) -> None:
        """`trials` rounds over the pending candidates (built and parity-checked in the first) while
        the budget lasts: a candidate is started only when what it is expected to cost (its own first
        round, or eager's before it has one) still fits; what was not timed is skipped, and said why."""
        references: dict = {}  # eager's output per probe shape, for the parity check
        probes: dict[str, torch.Tensor] = {}
        costs: dict[str, float] = {}  # seconds each candidate's first round took: build, warm-up, timing
        for trial in range(self.trials):
            for name in self.pending or ():
                cap = self.budget(clip)  # known better once eager is timed
                begun = time.perf_counter()
                over = begun - started + costs.get(name, costs.get("eager", 0.0)) > cap
                if trial > 0 and over:
                    return  # every candidate that was timed once keeps that timing
                if name != "eager" and over:
                    if not self.timings.get(name) and name not in self.dropped:
                        self.dropped[name] = (f"not timed: choosing is capped at {cap:.0f} s "
                                              f"({CHOICE_SECONDS:.0f} s or {CHOICE_SHARE:.0%} of the job)")
                        self.runners.pop(name, None)
                    continue
                if trial == 0 and not self._add_probe(name, clip, probes):
                    continue
                runner = self.runners.get(name)
                if runner is None or name not in probes:
                    continue  # failed or disagreed earlier
                probe = probes[name]
                if self.run(runner, warm_up_clip(runner, probe)) is None:  # allocations, session start, weights
                    continue
                start = time.perf_counter()
                out = self.run(runner, probe)
                seconds = time.perf_counter() - start
                costs.setdefault(name, time.perf_counter() - begun)
                if out is None or (trial == 0 and not self.agrees(runner, probe, out, references)):
                    continue
                self.timings.setdefault(name, []).append(seconds / (probe.numel() / 3))

    def _add_probe(self, name: str, clip: torch.Tensor, probes: dict[str, torch.Tensor]) -> bool:
        """Build candidate `name` and cut the probe of `clip` it takes into `probes`; False if it cannot."""
        runner = self.build(name)
        if runner is None:
            return False
        probe = self.probe(runner, clip)
        if probe is None:
            self.dropped[name] = f"takes no clip of shape like {tuple(clip.shape)}"
            return False
        probes[name] = probe
        return True


def warm_up_clip(runner: Runner, probe: torch.Tensor) -> torch.Tensor:
    """What warms `runner` up before it is timed on `probe`: the probe's first two frames where it
    takes any clip length (the frame size, not the length, sets up its kernels), else the probe."""
    short = probe[:, :2]
    return short if probe.ndim == 5 and probe.shape[1] > 2 and runner.accepts(short) else probe
