"""The inference format: `model.safetensors` (weights) + `model.json` (how to rebuild and use them)."""

import datetime
import json
from pathlib import Path

import torch
from torch import nn

import vsr
from vsr.inference.model import FORMAT_NAME, FORMAT_VERSION, MODEL_JSON, WEIGHTS, sha256_file

SINGLE_FRAME_TARGETS = ("vsr.models.RRDBNet", "vsr.models.rrdb.RRDBNet")


def is_temporal(architecture: dict) -> bool:
    """Whether the generator looks at neighbouring frames (so clips need temporal context)."""
    return architecture["_target_"] not in SINGLE_FRAME_TARGETS


def write_weights(model: nn.Module, folder: Path) -> dict:
    """Save the state dict as safetensors (contiguous CPU float tensors); return its model.json entry."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path = folder / WEIGHTS
    save_file(state, str(path), metadata={"format": FORMAT_NAME})
    return {"file": WEIGHTS, "sha256": sha256_file(path), "bytes": path.stat().st_size,
            "num_params": sum(p.numel() for p in model.parameters()),
            "dtype": str(next(iter(state.values())).dtype).replace("torch.", "")}


def model_json(architecture: dict, weights: dict, source: dict, training_config: dict | None,
               metrics: dict | None, formats: dict) -> dict:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "scale": architecture["scale"],
        "temporal": is_temporal(architecture),
        "input": {"layout": "(B, T, 3, H, W)", "range": [0, 1], "color": "RGB", "dtype": "float32"},
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
