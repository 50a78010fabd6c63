"""Build one runner by name for a generator: from an export folder's files when they are there, else
from a verified on-the-fly export in the cache."""

import json
from pathlib import Path

from torch import nn

from vsr.errors import UserError
from vsr.runtimes.cache import cache_root, cached_runner, exported, weights_key
from vsr.runtimes.graphs import export_ncnn_files, export_onnx_file, export_residual_onnx_file
from vsr.runtimes.model_files import NCNN_BIN, NCNN_PARAM, ONNX_FILE, PROPAGATE_FILE, RECONSTRUCT_FILE, RESIDUAL_FILE
from vsr.runtimes.runners import (
    FrameGroups,
    NcnnRunner,
    OnnxRunner,
    OpenvinoRunner,
    Runner,
    SkipAddedRunner,
    SplitGraphRunner,
    TorchRunner,
    import_openvino,
)

RUNTIMES = ("auto", "eager", "channels_last", "onnxruntime", "openvino", "ncnn")


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


def has_onnx_graphs(folder: Path | None) -> bool:
    """Whether the export folder holds ONNX graphs of the whole model (split in two, or one)."""
    return exported(folder, "onnx_split", PROPAGATE_FILE) or exported(folder, "onnx", ONNX_FILE)


def make_runner(name: str, model: nn.Module, temporal: bool, folder: Path | None = None,
                threads: int | None = None, precision: str = "fp32") -> Runner:
    """Build runner `name` for `model`; exported files are read from `folder` when there,
    else written to the cache; single-frame models' runners take a few frames a call (`FrameGroups`).
    `precision="bf16"`: OpenVINO computes the network in bf16, the image skip in fp32 (PyTorch's
    runtimes get bf16 from the caller's autocast). Raises (ImportError, UserError, RuntimeError) when not possible."""
    runner = _make_runner(name, model, temporal, folder, threads, precision)
    return runner if temporal else FrameGroups(runner, getattr(model, "scale", 1))


def _make_runner(name: str, model: nn.Module, temporal: bool, folder: Path | None, threads: int | None,
                 precision: str) -> Runner:
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

        if folder is not None and exported(folder, "ncnn", NCNN_PARAM):
            return NcnnRunner(folder / NCNN_PARAM, folder / NCNN_BIN, threads)
        if temporal:
            raise UserError("ncnn runs single-frame models only")
        return cached_runner(lambda: NcnnRunner(cached() / NCNN_PARAM, cached() / NCNN_BIN, threads), cached(),
                             (NCNN_PARAM, NCNN_BIN), lambda work: export_ncnn_files(model, work))
    if name == "openvino" and precision == "bf16":
        import_openvino()  # missing runtime: ImportError before any export work

        if temporal or not getattr(model, "splits_skip", False):
            raise UserError("openvino in bf16 runs single-frame models whose bicubic skip can stay fp32 only")
        return cached_runner(lambda: SkipAddedRunner(OpenvinoRunner(cached() / RESIDUAL_FILE, threads, "bf16"), model),
                             cached(), (RESIDUAL_FILE,), lambda work: export_residual_onnx_file(model, work))
    if name in ("onnxruntime", "openvino"):
        runner = OnnxRunner if name == "onnxruntime" else OpenvinoRunner
        import_openvino() if name == "openvino" else __import__(name)  # missing runtime: ImportError before any export
        if folder is not None and temporal and exported(folder, "onnx_split", PROPAGATE_FILE):
            return SplitGraphRunner(runner(folder / PROPAGATE_FILE, threads), runner(folder / RECONSTRUCT_FILE, threads),
                                    int(getattr(model, "scale", 1)))
        if folder is not None and exported(folder, "onnx", ONNX_FILE):
            return runner(folder / ONNX_FILE, threads)
        if temporal:
            raise UserError(f"{name} for recurrent models needs an export folder from export.py formats=[onnx_split] "
                            "(or [onnx])")
        return cached_runner(lambda: runner(cached() / ONNX_FILE, threads), cached(), (ONNX_FILE,),
                             lambda work: export_onnx_file(model, work))
    raise UserError(f"runtime={name} is not one of: {', '.join(RUNTIMES)}")
