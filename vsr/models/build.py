"""Rebuild a generator from a plain config dict without Hydra (checkpoints, model.json)."""

import importlib

from torch import nn

from vsr.errors import UserError

ALLOWED_PREFIX = "vsr.models."


def build_generator(config: dict) -> nn.Module:
    """Instantiate `config["_target_"]` with the other keys; only classes under `vsr.models`."""
    kwargs = {k: v for k, v in config.items() if k != "_target_"}
    target = config.get("_target_", "")
    if not target.startswith(ALLOWED_PREFIX):
        raise UserError(f"model target {target!r} is not a vsrlab generator (expected {ALLOWED_PREFIX}...)")
    module_name, _, cls_name = target.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name, None)
    if cls is None:
        raise UserError(f"model target {target!r} does not exist in this version of vsrlab")
    return cls(**kwargs)
