"""Rebuild a generator from a plain config dict without Hydra (checkpoints, model.json)."""

import importlib
import inspect

from torch import nn

from vsr.errors import UserError

ALLOWED_PREFIX = "vsr.models."


def generator_class(target) -> type:
    """The class `target` names: only an `nn.Module` class defined under `vsr.models` (a function or
    anything else a file names is never called)."""
    if not isinstance(target, str) or not target.startswith(ALLOWED_PREFIX):
        raise UserError(f"model target {target!r} is not a vsrlab generator (expected {ALLOWED_PREFIX}...)")
    module_name, _, cls_name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, ValueError):
        raise UserError(f"model target {target!r} does not exist in this version of vsrlab") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise UserError(f"model target {target!r} does not exist in this version of vsrlab")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__.startswith(ALLOWED_PREFIX)):
        raise UserError(f"model target {target!r} is not a generator class of vsrlab")
    return cls


def build_generator(config: dict) -> nn.Module:
    """Instantiate `config["_target_"]` with the other keys; only classes under `vsr.models`."""
    if not isinstance(config, dict):
        raise UserError(f"model architecture must be a mapping with _target_, not {type(config).__name__}")
    target = config.get("_target_", "")
    cls = generator_class(target)
    kwargs = {k: v for k, v in config.items() if k != "_target_"}
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise UserError(f"model target {target!r} does not take these settings ({err})") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, RuntimeError) as err:  # a setting of the wrong type or size
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"model target {target!r} cannot be built from these settings ({first[:200]})") from None
