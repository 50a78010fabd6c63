"""How train.py's Trainer is built for one process, DDP on one machine, or ranks started by SLURM.

`trainer.accumulate_grad_batches` is read here, not by Lightning (whose automatic accumulation
does not apply to the module's manual G/D optimisation): the module accumulates itself.
"""

import copy
import logging

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vsr.errors import UserError
from vsr.training.progress import StepProgressBar

log = logging.getLogger(__name__)


def ranks_started_outside() -> bool:
    """Whether a cluster manager (SLURM's srun, torchrun, LSF) starts one process per rank."""
    from lightning.fabric.plugins.environments import LSFEnvironment, SLURMEnvironment, TorchElasticEnvironment

    return any(env.detect() for env in (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment))


def in_sweep() -> bool:
    """Whether this job is one of a Hydra multirun (`-m`, a sweeper or a launcher plugin)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def several_processes(settings: DictConfig) -> bool:
    """Whether `trainer.devices` / `num_nodes` may ask for more than one process."""
    devices = settings.get("devices", "auto")
    if devices == "auto" and settings.get("accelerator") == "cpu":
        devices = 1
    one = devices == 1 or (isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices)) and len(devices) == 1
    return not one or int(settings.get("num_nodes", 1) or 1) > 1


def build_trainer(cfg: DictConfig, module: L.LightningModule, **kwargs) -> L.Trainer:
    """`instantiate(cfg.trainer, **kwargs)`, after these adjustments:

    - `accumulate_grad_batches: k` goes to the module; `val_check_interval` is scaled by k so
      it still counts generator updates (Lightning counts batches).
    - DDP's default launch (`start_method: popen`) re-runs the command line once per extra rank.
      Inside a Hydra multirun that would start the whole sweep again in every rank, so there the
      ranks are forked instead (spawning would need a picklable module), unless a cluster
      manager starts them (SLURM's srun under hydra/launcher=slurm).
    - the progress bar counts generator steps over the run (vsr/training/progress.py).
    - several devices with `strategy: auto` (trainer=gpu trainer.devices=4) get DDP with
      `find_unused_parameters=True`, which the module's separate G and D backward passes need.
    """
    settings = copy.deepcopy(cfg.trainer)
    with open_dict(settings):
        accumulate = int(settings.pop("accumulate_grad_batches", 1) or 1)
        if accumulate < 1:
            raise UserError(f"trainer.accumulate_grad_batches={accumulate} must be at least 1")
        if accumulate > 1:
            if not hasattr(module, "accumulate_grad_batches"):
                raise UserError(f"trainer.accumulate_grad_batches={accumulate}: {type(module).__name__} "
                                "does not accumulate gradients; use 1")
            module.accumulate_grad_batches = accumulate
            if isinstance(settings.get("val_check_interval"), int):
                settings.val_check_interval = settings.val_check_interval * accumulate
        strategy = settings.get("strategy", "auto")
        if strategy in (None, "auto", "ddp") and several_processes(settings):
            # Lightning's own DDP would not expect the G and D backward passes to leave parameters out
            settings.strategy = strategy = "ddp_find_unused_parameters_true"
        if (isinstance(strategy, DictConfig) and "DDPStrategy" in str(strategy.get("_target_", ""))
                and strategy.get("start_method", "popen") == "popen" and in_sweep() and not ranks_started_outside()):
            log.info("trainer=ddp inside a multirun: forking the ranks (re-running the command line would "
                     "restart the sweep in every rank)")
            strategy.start_method = "fork"
    if settings.get("enable_progress_bar", True):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), StepProgressBar()]
    return instantiate(settings, **kwargs)
