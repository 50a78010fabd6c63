"""export.py's job: a training checkpoint (or ESRGAN / Real-ESRGAN, BasicVSR / BasicVSR++ weights) -> an
inference folder.

DIR/model.safetensors + DIR/model.json, and per `formats` DIR/model.onnx, DIR/model.propagate.onnx +
DIR/model.reconstruct.onnx (onnx_split), DIR/model.pt and DIR/model.ncnn.param/.bin, each
checked against eager PyTorch. Files are written in a temporary folder and moved in when all
checks pass, model.json last, so a folder with a model.json is complete.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from vsr.errors import UserError, check_flag
from vsr.export.package import model_json, write_json, write_weights
from vsr.models.descriptor import describe
from vsr.options import ExportOptions, options
from vsr.runtimes.graphs import FORMATS, export_format
from vsr.runtimes.model_files import CHECK_FILE, GRAPH_FILES, MODEL_JSON


def read_source(path: str | Path, use_ema: bool = True) -> tuple[nn.Module, dict, dict]:
    """`(model, architecture, extra)` from a vsrlab Lightning checkpoint, an export folder (to write
    it again with other formats), ESRGAN weights (`.pth` with params_ema/params, or `.safetensors`) or
    BasicSR / MMagic BasicVSR(++) weights. `extra` has source/training_config."""
    from vsr.models.build import build_generator
    from vsr.models.convert import is_esrgan_state, load_esrgan, unwrap_state
    from vsr.models.convert_basicvsr import generator_state as reference_state
    from vsr.models.convert_basicvsr import is_basicvsr_state, load_basicvsr
    from vsr.runtimes.checkpoints import generator_state, read_checkpoint

    file = Path(path)
    if (file / MODEL_JSON).is_file():  # keeps the folder's provenance: it names the training run
        from vsr.runtimes.model_files import load

        model, meta = load(file)
        return model, dict(meta["architecture"]), {"source": meta.get("source") or {},
                                                   "training_config": meta.get("training_config"),
                                                   "metrics": meta.get("metrics")}
    if file.suffix == ".safetensors" and file.is_file():
        from safetensors.torch import load_file

        try:
            content = load_file(str(file))
        except Exception as err:
            raise UserError(f"checkpoint={path}: cannot be read as safetensors ({err})") from None
    else:
        content = read_checkpoint(file)
    hparams = (content.get("hyper_parameters") or {}) if isinstance(content, dict) else {}
    config = hparams.get("generator_config")
    reference = reference_state(content) if config is None else None
    if reference is not None and is_basicvsr_state(reference):  # BasicSR / MMagic BasicVSR, BasicVSR++
        model, config = load_basicvsr(content)
        kind = next((k for k in ("params_ema", "params", "state_dict") if k in content), "state_dict")
        return model, config, {"source": {"kind": "basicvsr-import", "file": str(path), "weights": kind},
                               "training_config": None}
    if isinstance(content, dict) and "state_dict" in content:
        if config is None:
            raise UserError(f"checkpoint={path} was not written by vsrlab training (no generator_config)")
        model = build_generator(dict(config))
        state = generator_state(content, use_ema)
        if not state:
            raise UserError(f"checkpoint={path} has no generator weights (generator_ema.module.* / generator.*)")
        model.load_state_dict(state)
        ema = use_ema and any(k.startswith("generator_ema.module.") for k in content["state_dict"])
        source = {"kind": "vsrlab-checkpoint", "file": str(path), "global_step": content.get("global_step"),
                  "epoch": content.get("epoch"), "weights": "ema" if ema else "raw"}
        return model.eval(), dict(config), {"source": source, "training_config": hparams.get("training_config")}
    try:
        state = unwrap_state(content)
    except UserError as err:
        raise UserError(f"checkpoint={path}: neither a vsrlab checkpoint nor ESRGAN weights ({err})") from None
    if not is_esrgan_state(state):
        raise UserError(f"checkpoint={path}: neither a vsrlab checkpoint, ESRGAN / Real-ESRGAN RRDBNet weights "
                        "nor BasicVSR / BasicVSR++ weights (BasicSR or MMagic)")
    kind = "params_ema" if "params_ema" in content else "params" if "params" in content else "state_dict"
    model, config = load_esrgan(content)
    return model, config, {"source": {"kind": "esrgan-import", "file": str(path), "weights": kind},
                           "training_config": None}


def find_metrics(checkpoint: Path, metrics: str | None) -> dict | None:
    """evaluate.py's metrics.json: the given file, else RUN/metrics.json beside RUN/checkpoints/."""
    candidates = [Path(metrics)] if metrics else [checkpoint.parent.parent / "metrics.json",
                                                  checkpoint.parent / "metrics.json"]
    for file in candidates:
        if file.is_file():
            try:
                return {"file": str(file), **json.loads(file.read_text())}
            except json.JSONDecodeError as err:
                raise UserError(f"metrics={file}: not valid JSON ({err})") from None
    if metrics:
        raise UserError(f"metrics={metrics}: file not found (evaluate.py writes RUN/metrics.json)")
    return None


def export(model: nn.Module, architecture: dict, output_dir: str | Path, formats=(), source: dict | None = None,
           training_config: dict | None = None, metrics: dict | None = None, frames: int = 8,
           parity_tol: float = 1e-4, opset: int = 18, overwrite: bool = False) -> dict:
    """Write the inference folder for `model` (an upscaler or a frame interpolator); returns the model.json dict."""
    formats = list(formats or [])
    descriptor = describe(model)
    if formats and descriptor.task == "interpolation":
        raise UserError(f"formats=[{','.join(formats)}]: frame interpolators are exported as model.safetensors only "
                        "(formats=[]); upscale.py runs them in PyTorch")
    for name in formats:
        if name not in FORMATS:
            raise UserError(f"formats contains {name!r}; choose from: {', '.join(FORMATS)}")
    if int(frames) < 1:
        raise UserError(f"frames={frames} must be >= 1")
    no_graphs = getattr(model, "no_graph_export", None)  # why this model has no ONNX / TorchScript files yet
    if formats and no_graphs:
        raise UserError(f"formats={formats}: {no_graphs}; export with formats=[] (model.safetensors only): "
                        "upscale.py and evaluate.py run it in PyTorch")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output_dir={output_dir} is a file; give a directory")
    if (out / MODEL_JSON).exists() and not overwrite:
        raise UserError(f"output_dir={output_dir} already holds an exported model; pass overwrite=true to replace it")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    temporal = descriptor.temporal
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        weights = write_weights(model, tmp)
        entries = {name: export_format(name, model, tmp, temporal, int(frames), parity_tol, opset)
                   for name in formats}
        meta = model_json(descriptor, architecture, weights, source or {}, training_config, metrics, entries)
        write_json(meta, tmp)
        (out / MODEL_JSON).unlink(missing_ok=True)  # the folder is incomplete until model.json is back
        for stale in (*GRAPH_FILES, CHECK_FILE):  # an earlier export's graphs and bf16 checks are not of these weights
            (out / stale).unlink(missing_ok=True)
        umask = os.umask(0)
        os.umask(umask)
        for name in [p.name for p in tmp.iterdir() if p.name != MODEL_JSON] + [MODEL_JSON]:
            os.chmod(tmp / name, 0o666 & ~umask)  # safetensors writes 0600; exports are meant to be shared
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()
    return meta


def run(cfg) -> dict:
    """`python export.py checkpoint=CKPT output_dir=DIR [formats=[onnx,torchscript]]`; `cfg`: ExportOptions
    (vsr/options.py), or a mapping of some of them."""
    cfg = options(ExportOptions, cfg)
    if not cfg.checkpoint:
        raise UserError("checkpoint=CKPT is required (a training RUN/checkpoints/last.ckpt, "
                        "or ESRGAN / Real-ESRGAN weights such as RealESRGAN_x4plus.pth)")
    if not cfg.output_dir:
        raise UserError("output_dir=DIR is required: the folder to write model.safetensors and model.json to")
    checkpoint = Path(cfg.checkpoint)
    if not checkpoint.is_file() and not (checkpoint / MODEL_JSON).is_file():
        raise UserError(f"checkpoint={checkpoint}: file not found (training writes RUN/checkpoints/last.ckpt; "
                        f"an export folder holds {MODEL_JSON})")
    formats = list(cfg.formats or [])
    with torch.no_grad():  # scoped: run() is also called in-process (tests, notebooks)
        model, architecture, extra = read_source(checkpoint, bool(cfg.use_ema))
        if check_flag("ensemble", cfg.ensemble):
            if describe(model).task != "interpolation":
                raise UserError("ensemble=true is for frame interpolators (it averages the prediction with the "
                                "frames swapped); upscale.py's ensemble= is the upscalers' self-ensemble")
            model.ensemble, architecture = True, {**architecture, "ensemble": True}
        metrics = extra["metrics"] if checkpoint.is_dir() and not cfg.metrics else find_metrics(checkpoint, cfg.metrics)
        meta = export(model, architecture, cfg.output_dir, formats, source=extra["source"],
                      training_config=extra["training_config"], metrics=metrics,
                      frames=cfg.frames, parity_tol=float(cfg.parity_tol),
                      opset=int(cfg.opset), overwrite=bool(cfg.overwrite))
    checks = ", ".join(f"{name} max |diff| {entry['parity']['max_abs_error']:.1e}"
                       for name, entry in meta["formats"].items())
    what = "frame interpolator" if meta["scale"] is None else f"x{meta['scale']}"
    print(f"exported {architecture['_target_']} {what} ({meta['weights']['num_params']:,} parameters) "
          f"to {cfg.output_dir}: {', '.join(['model.safetensors', 'model.json'] + [f for e in meta['formats'].values() for k, f in e.items() if k.endswith('file')])}"
          + (f"; parity vs eager: {checks}" if checks else ""))
    return meta
