"""The inference format: `model.safetensors` (weights) + `model.json` (how to rebuild and use them)."""

import datetime
import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

import vsr
from vsr.models.descriptor import ModelDescriptor
from vsr.runtimes.model_files import FORMAT_NAME, FORMAT_VERSION, MODEL_JSON, WEIGHTS, sha256_file


def write_weights(model: nn.Module, folder: Path) -> dict:
    """Save the state dict as safetensors (contiguous CPU float tensors); return its model.json entry."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = folder / WEIGHTS
    save_file(state, str(path), metadata={"format": FORMAT_NAME})
    return {"file": WEIGHTS, "sha256": sha256_file(path), "bytes": path.stat().st_size,
            "num_params": sum(p.numel() for p in model.parameters()),
            "dtype": str(next(iter(state.values())).dtype).replace("torch.", "")}


INTERPOLATOR_INPUT = {"call": "model(frame0, frame1, t)", "layout": "(B, 3, H, W) each, t float or (B,)",
                      "range": [0, 1], "color": "RGB", "dtype": "float32"}


def model_json(descriptor: ModelDescriptor, architecture: dict, weights: dict, source: dict,
               training_config: dict | None, metrics: dict | None, formats: dict) -> dict:
    """The model.json of an export: the model's descriptor (task, scale, temporal, size multiple, partial
    reconstruction), how to rebuild it, its weights and where they came from."""
    interpolation = descriptor.task == "interpolation"
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **asdict(descriptor),
        "architecture": architecture,
        "input": INTERPOLATOR_INPUT if interpolation else {"layout": "(B, T, 3, H, W)", "range": [0, 1], "color": "RGB",
                                                           "dtype": "float32"},
        "weights": weights,
        "source": source,
        "training_config": training_config,
        "metrics": metrics,
        "formats": formats,
        "versions": {"vsrlab": vsr.__version__, "torch": torch.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(meta: dict, folder: Path) -> Path:
    path = folder / MODEL_JSON
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return path
