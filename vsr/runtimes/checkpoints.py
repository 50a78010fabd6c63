"""Read generators out of training checkpoints, safely (weights_only) and without Lightning: for
export, evaluation and fine-tuning alike."""

from pathlib import Path

import torch
from torch import nn

from vsr.errors import UserError
from vsr.models.build import build_generator

EMA_PREFIX = "generator_ema.module."
RAW_PREFIX = "generator."


def read_checkpoint(path: str | Path) -> dict:
    """Load a Lightning checkpoint with `weights_only=True`: a file carrying code is refused."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"checkpoint={path}: file not found (training writes RUN/checkpoints/last.ckpt)")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError, RuntimeError for corrupt zips, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"checkpoint={path} cannot be loaded safely (weights_only=True): {first}") from None


def generator_state(checkpoint: dict, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The generator's weights from a checkpoint's state dict, EMA copy by default."""
    state = checkpoint["state_dict"]
    prefix = EMA_PREFIX if use_ema and any(k.startswith(EMA_PREFIX) for k in state) else RAW_PREFIX
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_generator(path: str | Path, use_ema: bool = True) -> tuple[nn.Module, dict]:
    """Rebuild the generator saved by training. Returns `(model in eval mode, meta)`;
    meta has `generator_config` (with `_target_`), `scale`, `global_step`."""
    checkpoint = read_checkpoint(path)
    hparams = checkpoint.get("hyper_parameters", {})
    config = hparams.get("generator_config")
    if config is None:
        raise UserError(f"checkpoint={path} was not written by vsrlab training (no generator_config)")
    model = build_generator(config)
    model.load_state_dict(generator_state(checkpoint, use_ema))
    meta = {"generator_config": config, "scale": config.get("scale"),
            "global_step": checkpoint.get("global_step"), "training_config": hparams.get("training_config")}
    return model.eval(), meta
