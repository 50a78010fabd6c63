"""`python train.py`: compose objects from the Hydra config and fit."""

import logging
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vsr import SUPPORTED_SCALES
from vsr.errors import UserError, check_choice
from vsr.models.descriptor import describe
from vsr.runtime import keep_freed_memory
from vsr.training.checkpoint import init_generator
from vsr.training.checkpoint_io import check_resumable
from vsr.training.console import quiet_framework_console
from vsr.training.distributed import build_trainer, in_sweep
from vsr.training.module import NonFiniteLossError, VSRGANModule

log = logging.getLogger(__name__)


def run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()


def validate(cfg: DictConfig) -> None:
    """Catch the common mistakes before any work starts, each with one clear line."""
    check_choice("scale", cfg.scale, SUPPORTED_SCALES)
    if cfg.trainer.get("max_steps", -1) in (None, 0):
        raise UserError("trainer.max_steps must be a positive number of generator steps (or -1 for epochs)")
    frames = cfg.data.get("train", {}).get("num_frames")
    for term, minimum in (("temporal", 2), ("pingpong", 2)):
        weight = cfg.loss.get(term, {}).get("weight", 0) if cfg.loss.get(term) else 0
        if weight > 0 and frames is not None and frames < minimum:
            raise UserError(f"loss.{term} needs data.train.num_frames >= {minimum} (got {frames}); "
                            f"raise data.train.num_frames or set loss.{term}.weight=0")
    if cfg.ckpt_path and cfg.ckpt_path != "last" and not Path(cfg.ckpt_path).is_file():
        raise UserError(f"ckpt_path={cfg.ckpt_path}: file not found (training writes RUN/checkpoints/last.ckpt)")


def check_machine(cfg: DictConfig) -> None:
    """Refuse a config this machine cannot run (kept apart from `validate`, which judges the config alone)."""
    if str(cfg.trainer.get("accelerator")) in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.accelerator={cfg.trainer.accelerator}: this machine has no CUDA GPU that PyTorch "
                        "can use; train on the CPU with trainer=cpu (the default) or trainer=ddp")


def build_losses(cfg: DictConfig) -> dict:
    """Each loss term with weight > 0, instantiated; a zero weight builds nothing (no VGG load)."""
    return {name: instantiate(term) for name, term in cfg.loss.items() if term is not None and term.weight > 0}


def build_module(cfg: DictConfig, generator: torch.nn.Module) -> L.LightningModule:
    """The training module for the generator's task: super-resolution GAN, or frame interpolation
    (a model whose descriptor says task "interpolation", e.g. model=interp; it uses no loss= or discriminator=)."""
    common = dict(optim=OmegaConf.to_container(cfg.optim, resolve=True),
                  training=OmegaConf.to_container(cfg.training, resolve=True),
                  generator_config=OmegaConf.to_container(cfg.model, resolve=True),
                  training_config=OmegaConf.to_container(cfg, resolve=True))
    if describe(generator).task == "interpolation":
        from vsr.training.interp_module import InterpModule

        return InterpModule(generator=generator, **common)
    losses = build_losses(cfg)
    discriminator = instantiate(cfg.discriminator) if "adversarial" in losses else None
    return VSRGANModule(generator=generator, discriminator=discriminator, losses=losses, scale=cfg.scale, **common)


def size(network: torch.nn.Module) -> str:
    return f"{sum(p.numel() for p in network.parameters()) / 1e6:.2f}M parameters"


def diverged(err: BaseException) -> bool:
    """Whether training stopped on non-finite losses, also in a forked DDP rank (whose error
    reaches this process as a ProcessRaisedException carrying the rank's traceback as text)."""
    return isinstance(err, NonFiniteLossError) or (
        type(err).__name__ == "ProcessRaisedException" and f"{NonFiniteLossError.__module__}.NonFiniteLossError: "
        in str(err))


def run(cfg: DictConfig) -> float | None:
    validate(cfg)
    check_machine(cfg)
    quiet_framework_console(resuming=bool(cfg.ckpt_path))
    keep_freed_memory()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out = run_dir()
    datamodule = instantiate(cfg.data)
    generator = instantiate(cfg.model)
    if cfg.get("init_from"):
        init_generator(generator, cfg.init_from, partial=bool(cfg.get("init_partial", False)))
    if not any(True for _ in generator.parameters()):
        raise UserError(f"model={HydraConfig.get().runtime.choices.get('model') if HydraConfig.initialized() else ''} "
                        "is a fixed interpolation baseline with nothing to train; choose model=recurrent_rrdb or rrdb")
    module = build_module(cfg, generator)
    if cfg.ckpt_path and cfg.ckpt_path != "last":
        check_resumable(cfg.ckpt_path, module)
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    loggers = [instantiate(lg) for lg in cfg.logger.values() if lg is not None]
    trainer = build_trainer(cfg, module, callbacks=callbacks, logger=loggers, default_root_dir=str(out))
    log.info("generator %s: %s, scale x%d; run dir %s", type(generator).__name__, size(generator), cfg.scale, out)
    if getattr(module, "discriminator", None) is not None:
        log.info("critic %s: %s", type(module.discriminator).__name__, size(module.discriminator))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    except Exception as err:
        if not (in_sweep() and diverged(err)):
            raise
        # one diverging trial (a too-high lr) is a result of the sweep, not the end of it
        log.warning("this job of the sweep failed: %s", str(err).strip().splitlines()[-1])
        return None
    score = trainer.callback_metrics.get("val/psnr_y")
    gain = trainer.callback_metrics.get("val/gain_db")
    if score is not None and trainer.is_global_zero:
        baseline = "linear blend" if describe(generator).task == "interpolation" else "bicubic"
        log.info("validation PSNR-Y %.2f dB (%+.2f dB over %s) at step %d", float(score), float(gain), baseline,
                 trainer.global_step)
    return float(score) if score is not None else None
