"""Graph exporters: ONNX, TorchScript and ncnn files of a generator, each checked against eager PyTorch
(export.py writes them into an export folder; the runtime cache exports on the fly with the same code).

Which axes stay dynamic depends on the model:
- single-frame `RRDBNet`: batch, frames, height and width (frames are folded into the batch);
- recurrent models: height and width; the frame count is fixed at export (`frames`) because the
  backward/forward recurrence over time is unrolled into the graph. Run longer videos in chunks
  of that many frames (as the Upscaler does). `onnx_split` writes the same model as two graphs,
  model.propagate.onnx (clip `lr` -> every frame's hidden state `hidden`, frames fixed) and
  model.reconstruct.onnx (frames `lr` `(N, 3, H, W)` and their `hidden` -> `sr`, all axes dynamic):
  upscale.py's ONNX Runtime / OpenVINO runners then skip the reconstruction of context frames.
ncnn (through pnnx) is for single-frame models: one frame `data` (3, H, W) -> `output`, any size.
"""

import contextlib
import io
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from vsr.errors import UserError
from vsr.models.descriptor import describe
from vsr.runtimes.model_files import (
    NCNN_BIN,
    NCNN_PARAM,
    ONNX_FILE,
    PROPAGATE_FILE,
    RECONSTRUCT_FILE,
    RESIDUAL_FILE,
    TORCHSCRIPT_FILE,
    sha256_file,
)
from vsr.runtimes.runners import NcnnRunner, OnnxRunner, SplitGraphRunner

FORMATS = ("onnx", "onnx_split", "torchscript", "ncnn")


@contextlib.contextmanager
def quiet():
    """Silence tracer / exporter chatter (TracerWarning, deprecation notices, progress prints)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def check_shapes(temporal: bool, frames: int, size: int = 32, multiple: int = 1) -> list[tuple[int, ...]]:
    """The clip shapes parity is checked on: the traced one, one with other H/W (and T, B), and an
    odd size that is no multiple of the flow pyramid's (its padding must survive the export).
    Sizes are rounded up to `multiple`, the only sizes a model that folds pixels into channels
    (Real-ESRGAN x2's pixel_unshuffle) takes: the Upscaler pads its inputs to it."""
    def fit(n: int) -> int:
        return n + (-n % multiple)

    sizes = [(fit(size), fit(size)), (fit(size - 8), fit(size + 8)), (fit(size - 5), fit(size + 7))]
    if temporal:
        return [(1, frames, 3, h, w) for h, w in sizes]
    return [(b, t, 3, h, w) for (b, t), (h, w) in zip([(1, 2), (2, 3), (1, 2)], sizes)]


@torch.no_grad()
def max_abs_error(run, model: nn.Module, shapes, seed: int = 0) -> float:
    """Largest |run(x) - model(x)| over random clips of `shapes`."""
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(*shape, generator=gen)
        expected = model(x)
        got = torch.as_tensor(run(x))
        if got.shape != expected.shape:
            raise UserError(f"exported model gives shape {tuple(got.shape)} for {shape}, eager {tuple(expected.shape)}")
        worst = max(worst, (got - expected).abs().max().item())
    return worst


def dynamo_onnx(module: nn.Module, example: dict[str, torch.Tensor], dynamic: dict[str, tuple[int, ...]],
                output: str, path: Path, opset: int) -> None:
    """torch.export + the dynamo ONNX exporter: symbolic sizes survive the flow network's size
    arithmetic (the legacy tracer freezes them). `dynamic`: each input's dynamic axes."""
    dyn = torch.export.Dim.DYNAMIC
    with quiet():
        program = torch.export.export(module, tuple(example.values()), strict=False,
                                      dynamic_shapes={name: {axis: dyn for axis in dynamic[name]} for name in example})
        onnx_program = torch.onnx.export(program, dynamo=True, input_names=list(example), output_names=[output],
                                         opset_version=opset, verbose=False, optimize=True)
        assert onnx_program is not None  # dynamo=True returns the program
        onnx_program.save(str(path))


def export_onnx(model: nn.Module, folder: Path, temporal: bool, frames: int, opset: int = 18) -> dict:
    """Write model.onnx; input `lr` `(B, T, 3, H, W)`, output `sr`. Returns its model.json entry."""
    path = folder / ONNX_FILE
    shape = check_shapes(temporal, frames)[0]
    example = (torch.rand(*shape),)
    with quiet():
        if temporal:
            dynamo_onnx(model, {"lr": example[0]}, {"lr": (3, 4)}, "sr", path, opset)
            axes = [1, frames, 3, "height", "width"]  # batch and frames fixed in the dynamo graph
        else:
            axes_map = {0: "batch", 1: "frames", 3: "height", 4: "width"}
            torch.onnx.export(model, example, str(path), dynamo=False, input_names=["lr"], output_names=["sr"],
                              opset_version=min(opset, 17),
                              dynamic_axes={"lr": axes_map, "sr": {0: "batch", 1: "frames", 3: "out_height",
                                                                   4: "out_width"}})
            axes = ["batch", "frames", 3, "height", "width"]
    return {"file": ONNX_FILE, "sha256": sha256_file(path), "input": {"name": "lr", "shape": axes},
            "output": "sr"}


# (*) `# type: ignore`: nn.Module types any attribute as Tensor | Module, so a recurrent model's methods
# (propagate, reconstruct) and its `scale` read through an `nn.Module` variable are not seen as such

class Propagation(nn.Module):
    """A recurrent model's propagation alone: clip `(1, T, 3, H, W)` -> hidden states `(1, T, C, H, W)`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(self.model.propagate(lr)), dim=1)  # type: ignore[operator]  # (*)


class Reconstruction(nn.Module):
    """A recurrent model's reconstruction alone: frames `(N, 3, H, W)` + their hidden states -> outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.reconstruct(hidden, lr)  # type: ignore[operator]  # (*)


def export_onnx_split(model: nn.Module, folder: Path, temporal: bool, frames: int, opset: int = 18) -> dict:
    """Write model.propagate.onnx + model.reconstruct.onnx (module docstring). Returns the entry."""
    if not (temporal and hasattr(model, "propagate") and hasattr(model, "reconstruct")):
        raise UserError("formats=[onnx_split] is for recurrent models (model=recurrent_rrdb); "
                        "single-frame models use formats=[onnx]")
    lr = torch.rand(*check_shapes(temporal, frames)[0])
    with torch.no_grad():
        hidden = Propagation(model)(lr)
    dynamo_onnx(Propagation(model), {"lr": lr}, {"lr": (3, 4)}, "hidden", folder / PROPAGATE_FILE, opset)
    dynamo_onnx(Reconstruction(model), {"lr": lr[0, :2], "hidden": hidden[0, :2]},
                {"lr": (0, 2, 3), "hidden": (0, 2, 3)}, "sr", folder / RECONSTRUCT_FILE, opset)
    return {"file": PROPAGATE_FILE, "sha256": sha256_file(folder / PROPAGATE_FILE),
            "reconstruct_file": RECONSTRUCT_FILE, "reconstruct_sha256": sha256_file(folder / RECONSTRUCT_FILE),
            "input": {"name": "lr", "shape": [1, frames, 3, "height", "width"]}, "output": "hidden",
            "reconstruct_input": {"names": ["lr", "hidden"], "shapes": [["frames", 3, "height", "width"],
                                                                       ["frames", hidden.shape[2], "height", "width"]]},
            "reconstruct_output": "sr"}


def onnx_split_runner(folder: Path, scale: int):
    return SplitGraphRunner(OnnxRunner(folder / PROPAGATE_FILE), OnnxRunner(folder / RECONSTRUCT_FILE), scale)


class FrameCountGuard(nn.Module):
    """A recurrent model's traced graph with its frame count checked: the trace unrolled the recurrence
    over exactly `frames` steps, and any other count would fail deep inside it (`select(): index out of
    range`), so it is refused first: TorchScript's error then ends with a line that says what the file takes."""

    frames: torch.jit.Final[int]
    message: torch.jit.Final[str]

    def __init__(self, traced: nn.Module, frames: int):
        super().__init__()
        self.traced, self.frames = traced, frames
        self.message = (f"this model.pt takes clips of exactly {frames} frames, (B, {frames}, 3, H, W): the recurrence "
                        f"was unrolled at export; split or pad the clip, or export again with frames=N")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.frames:
            raise RuntimeError(self.message)
        return self.traced(x)


def export_torchscript(model: nn.Module, folder: Path, temporal: bool, frames: int) -> dict:
    """Write model.pt (torch.jit.trace; a recurrent model's frame count checked by FrameCountGuard).
    Returns its model.json entry."""
    path = folder / TORCHSCRIPT_FILE
    shape = check_shapes(temporal, frames)[0]
    with quiet():
        traced = torch.jit.trace(model, torch.rand(*shape), check_trace=False)
        if temporal:
            traced = torch.jit.script(FrameCountGuard(traced, frames))
        torch.jit.save(traced, str(path))
    # the axes the parity check exercised
    axes = [1, frames, 3, "height", "width"] if temporal else ["batch", "frames", 3, "height", "width"]
    return {"file": TORCHSCRIPT_FILE, "sha256": sha256_file(path), "input": {"name": "lr", "shape": axes}}


def torchscript_runner(path: Path):
    with quiet():  # torch.jit.load is deprecated in favour of torch.export (a FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return lambda x: module(x)


def export_ncnn(model: nn.Module, folder: Path, temporal: bool) -> dict:
    """Write model.ncnn.param/.bin through pnnx (single-frame models only). Blobs are named as
    Real-ESRGAN's ncnn apps expect: `data` in (RGB [0, 1], one frame `(3, H, W)`, any size), `output`
    out (`(3, sH, sW)`), so the files drop into realesrgan-ncnn-vulkan, Upscayl or Video2X."""
    if temporal:
        raise UserError("formats=[ncnn] is for single-frame models (model=rrdb / rrdb_large); recurrent models "
                        "unroll time and need onnx or torchscript")
    export_ncnn_files(model, folder)
    return {"file": NCNN_PARAM, "sha256": sha256_file(folder / NCNN_PARAM), "weights_file": NCNN_BIN,
            "weights_sha256": sha256_file(folder / NCNN_BIN), "input": {"name": "data", "shape": [3, "height", "width"]},
            "output": "output", "range": "RGB [0, 1]"}


def ncnn_runner(folder: Path):
    try:
        runner = NcnnRunner(folder / NCNN_PARAM, folder / NCNN_BIN)
    except ImportError:
        raise UserError("formats=[ncnn] checks parity with the ncnn runtime: pip install ncnn") from None
    return runner


def export_format(name: str, model: nn.Module, folder: Path, temporal: bool, frames: int,
                  tolerance: float, opset: int = 18) -> dict:
    """Export `name` into `folder`, check it against eager on two clip shapes, return its entry."""
    if name == "onnx":
        entry = export_onnx(model, folder, temporal, frames, opset)
        runner = OnnxRunner(folder / ONNX_FILE)
    elif name == "onnx_split":
        entry = export_onnx_split(model, folder, temporal, frames, opset)
        runner = onnx_split_runner(folder, model.scale)  # type: ignore[arg-type]  # (*)
    elif name == "torchscript":
        entry = export_torchscript(model, folder, temporal, frames)
        runner = torchscript_runner(folder / TORCHSCRIPT_FILE)
    elif name == "ncnn":
        entry = export_ncnn(model, folder, temporal)
        runner = ncnn_runner(folder)
    else:
        raise UserError(f"formats contains {name!r}; choose from: {', '.join(FORMATS)}")
    shapes = check_shapes(temporal, frames, multiple=describe(model).size_multiple)
    error = max_abs_error(runner, model, shapes)
    if not error <= tolerance:
        raise UserError(f"{name} export differs from eager PyTorch by {error:.2e} (> parity_tol={tolerance:g}); "
                        "not written")
    entry["parity"] = {"max_abs_error": error, "tolerance": tolerance, "shapes": [list(s) for s in shapes]}
    return entry


class FrameModel(nn.Module):
    """A single-frame generator as `(N, 3, H, W) -> (N, 3, sH, sW)` (what ncnn apps run)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[:, None])[:, 0]


def export_ncnn_files(model: nn.Module, folder: Path, example_hw: tuple[int, int] = (32, 32)) -> tuple[Path, Path]:
    """pnnx: single-frame `model` -> folder/model.ncnn.param + .bin with blobs `data` / `output`.
    Dense blocks are written in their concatenation-free form (`vsr.models.split_dense`: faster in ncnn)."""
    from vsr.models.split_dense import split_dense_blocks

    try:
        import pnnx
    except ImportError:
        raise UserError("ncnn export needs pnnx: pip install pnnx ncnn") from None
    folder = Path(folder).resolve()  # pnnx runs in its work folder: relative paths would point elsewhere
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".pnnx-", dir=folder))
    try:
        frame = FrameModel(split_dense_blocks(model)).eval()
        h, w = example_hw
        with torch.no_grad(), quiet():
            traced = torch.jit.trace(frame, torch.rand(1, 3, h, w), check_trace=False)
        traced.save(str(work / "model.pt"))
        names = {k: str(work / f"m.{k}") for k in ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy")}
        result = subprocess.run([pnnx.EXEC_PATH, str(work / "model.pt"), f"inputshape=[1,3,{h},{w}]f32",
                                 f"inputshape2=[1,3,{h + 8},{w + 16}]f32", "fp16=0",
                                 f"ncnnparam={work / NCNN_PARAM}", f"ncnnbin={work / NCNN_BIN}",
                                 *(f"{k}={v}" for k, v in names.items())],
                                capture_output=True, text=True, cwd=work, timeout=600)
        if result.returncode or not (work / NCNN_PARAM).is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise UserError(f"pnnx could not convert the model to ncnn: {' | '.join(tail)}")
        text = rename_blobs((work / NCNN_PARAM).read_text(), {"in0": "data", "out0": "output"})
        (folder / NCNN_PARAM).write_text(text)
        shutil.copyfile(work / NCNN_BIN, folder / NCNN_BIN)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder / NCNN_PARAM, folder / NCNN_BIN


def rename_blobs(param: str, names: dict[str, str]) -> str:
    """Rename blobs (and layers of the same name) in an ncnn .param text: `in0` -> `data`, ..."""
    lines = param.splitlines()
    out = lines[:2]
    for line in lines[2:]:
        fields = line.split()
        if len(fields) < 4:
            out.append(line)
            continue
        n_in, n_out = int(fields[2]), int(fields[3])
        io = slice(4, 4 + n_in + n_out)
        fields[1] = names.get(fields[1], fields[1])
        fields[io] = [names.get(f, f) for f in fields[io]]
        out.append(" ".join(fields))
    return "\n".join(out) + "\n"


def export_onnx_file(model: nn.Module, folder: Path) -> Path:
    """Single-frame model -> folder/model.onnx (dynamic batch, frames, height, width)."""
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, folder, temporal=False, frames=1)
    return folder / ONNX_FILE


class LowResResidual(nn.Module):
    """A single-frame model's network without its bicubic skip (`RRDBNet.lr_residual`): frames
    `(N, 3, H, W)` -> `(N, 3s^2, H, W)`, for a runtime that computes it in bf16 while the skip stays fp32."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.model.lr_residual(lr)  # type: ignore[operator]  # (*)


def export_residual_onnx_file(model: nn.Module, folder: Path) -> Path:
    """folder/model.residual.onnx of a model whose `splits_skip` (dynamic frames, height, width)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESIDUAL_FILE
    # the graph itself is fp32 (OpenVINO is told to compute in bf16); a caller's autocast would trace casts into it
    with quiet(), torch.autocast("cpu", enabled=False):
        torch.onnx.export(LowResResidual(model).eval(), (torch.rand(1, 3, 32, 32),), str(path), dynamo=False,
                          input_names=["lr"], output_names=["residual"], opset_version=17,
                          dynamic_axes={"lr": {0: "frames", 2: "height", 3: "width"},
                                        "residual": {0: "frames", 2: "height", 3: "width"}})
        error = max_abs_error(OnnxRunner(path).run, LowResResidual(model).eval(), [(1, 3, 40, 48), (2, 3, 33, 57)])
    if not error <= 1e-4:
        raise RuntimeError(f"{RESIDUAL_FILE} differs from eager PyTorch by {error:.2e}")
    return path
