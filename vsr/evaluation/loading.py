"""What evaluate scores: a trained checkpoint, an exported model directory, or a baseline."""

import glob
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from torch import nn

from vsr.errors import UserError
from vsr.evaluation.baselines import BASELINES, Interpolation
from vsr.models.descriptor import describe

BASELINE_TARGET = "vsr.evaluation.baselines.Interpolation"


@dataclass
class System:
    """A model under evaluation: `name` labels it in reports, `source` says where it came from."""

    name: str
    model: nn.Module
    source: str
    meta: dict = field(default_factory=dict)


def baseline(mode: str, scale: int) -> System:
    return System(mode, Interpolation(mode, scale).eval(), "interpolation (no weights)")


def load_system(cfg: DictConfig) -> System:
    """The main system from `checkpoint=` (a .ckpt or an exported directory) or `model=<baseline>`."""
    checkpoint, model_cfg = cfg.checkpoint, cfg.model
    model_cfg = OmegaConf.to_container(model_cfg, resolve=True) if model_cfg is not None else None
    is_baseline = model_cfg is not None and model_cfg.get("_target_") == BASELINE_TARGET
    if checkpoint:
        if is_baseline:
            raise UserError(f"give either checkpoint=... or model={model_cfg['mode']} (a baseline), not both")
        return _from_checkpoint(str(checkpoint), int(cfg.scale), model_cfg, cfg.use_ema)
    if is_baseline:
        return System(model_cfg["mode"], hydra.utils.instantiate(model_cfg).eval(), "interpolation (no weights)")
    if model_cfg is not None:
        raise UserError(f"model {model_cfg.get('_target_')} has no weights: pass checkpoint=RUN/checkpoints/last.ckpt "
                        f"(or model={'|'.join(BASELINES)} for a baseline)")
    raise UserError(f"nothing to evaluate: pass checkpoint=CKPT_OR_EXPORT_DIR or model={'|'.join(BASELINES)}")


def resolve_checkpoint(path: str) -> Path:
    """`path`, or the one file a glob names: after `train.py -m scale=2,4,8`, pick each scale's run
    with `checkpoint='multirun/DATE/TIME/*_scale${scale}/checkpoints/last.ckpt'`."""
    expanded = str(Path(path).expanduser())
    if not glob.has_magic(expanded):
        return Path(expanded)
    matches = sorted(glob.glob(expanded))
    if len(matches) != 1:
        found = "nothing" if not matches else f"{len(matches)} paths ({', '.join(matches[:3])}...)"
        raise UserError(f"checkpoint={path} must match exactly one checkpoint; it matches {found}")
    return Path(matches[0])


def _from_checkpoint(path: str, scale: int, model_cfg: dict | None, use_ema: bool) -> System:
    file = resolve_checkpoint(path)
    if not file.exists():
        raise UserError(f"checkpoint={path}: not found (training writes RUN/checkpoints/last.ckpt; "
                        "export writes a directory)")
    if file.is_dir():
        try:
            from vsr.inference import load
        except ImportError:
            raise UserError(f"checkpoint={path} is a directory, but this install cannot read exported models "
                            "(vsr.inference.load is missing)") from None
        model, meta = load(file)
        config = meta.get("architecture") or meta.get("generator_config") or {}
    else:
        from vsr.runtimes.checkpoints import load_generator

        try:
            model, meta = load_generator(file, use_ema=use_ema)
        except RuntimeError as err:  # load_state_dict: weights that do not fit the saved architecture
            first = str(err).strip().splitlines()[0]
            raise UserError(f"checkpoint={path}: its weights do not fit its own architecture ({first})") from None
        config = meta.get("generator_config") or {}
    found_scale = describe(model).scale
    if found_scale is not None and int(found_scale) != scale:
        raise UserError(f"checkpoint={path} is a x{found_scale} model but scale={scale} was asked; "
                        f"pass scale={found_scale} or a x{scale} checkpoint")
    if model_cfg is not None:
        _check_architecture(path, config, model_cfg)
    name = type(model).__name__
    return System(name, model.eval(), str(file), dict(meta))


def _check_architecture(path: str, saved: dict, asked: dict) -> None:
    """`model=...` given with a checkpoint must describe the architecture the checkpoint holds."""
    if saved.get("_target_") and saved.get("_target_") != asked.get("_target_"):
        raise UserError(f"checkpoint={path} holds a {saved['_target_']} but model asks for {asked.get('_target_')}; "
                        "leave model= out to use the checkpoint's own architecture")
    differ = [f"{k}={saved[k]} (model.{k}={asked[k]})" for k in sorted(set(saved) & set(asked))
              if k != "_target_" and _norm(saved[k]) != _norm(asked[k])]
    if differ:
        raise UserError(f"checkpoint={path} has a different architecture from model: " + ", ".join(differ))


def _norm(value):
    return list(value) if isinstance(value, (list, tuple)) else value
