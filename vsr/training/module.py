"""LightningModule: generator/discriminator training with manual optimisation and an EMA generator."""

import contextlib
import logging

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vsr.errors import UserError
from vsr.losses.temporal import pingpong_clip
from vsr.metrics import psnr
from vsr.models.rrdb import upsample_frames
from vsr.training.rng import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)


def psnr_y(sr: torch.Tensor, gt: torch.Tensor, crop: int) -> torch.Tensor:
    """Clip PSNR-Y: the evaluation metric (BasicSR conventions), averaged over frames `(T, 3, H, W)`."""
    return psnr(sr, gt, crop_border=crop, y_channel=True).mean()


class NonFiniteLossError(UserError):
    """Training stopped after `training.max_bad_steps` consecutive steps with non-finite losses or gradients."""


def gradients_finite(module: nn.Module) -> bool:
    """Whether every gradient of `module` is finite (max-abs norm: NaN and inf propagate, nothing overflows)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads, norm_type=float("inf"))))


class VSRGANModule(L.LightningModule):
    """Trains `generator` with pixel (+ perceptual, temporal, ping-pong) losses, then adds the
    adversarial game with `discriminator` after `warmup_steps`.

    The generator and discriminator are stepped once per batch each (once per
    `accumulate_grad_batches` batches with gradient accumulation); only the generator's
    optimiser advances `global_step`, so `trainer.max_steps` counts generator updates.

    Under DDP (`trainer=ddp`) gradients are averaged over ranks at every update (the strategy's
    `find_unused_parameters=True` lets the generator and critic backward passes each leave the
    other network out), a step is skipped on every rank when any rank's loss is non-finite, the
    logged training losses are means over ranks, and validation metrics are sums over all ranks'
    clips divided by the clip count (exact, not a mean of per-rank means).
    """

    accumulate_grad_batches: int = 1  # set by vsr.training.distributed.build_trainer

    def __init__(self, generator: nn.Module, discriminator: nn.Module | None, losses: dict,
                 optim: dict, training: dict, scale: int, generator_config: dict | None = None,
                 training_config: dict | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["generator", "discriminator", "losses"])
        self.automatic_optimization = False
        self.generator = generator
        self.generator_ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(training["ema_decay"]),
                                           use_buffers=True)
        self.generator_ema.requires_grad_(False)
        self.losses = nn.ModuleDict({k: v for k, v in losses.items() if v is not None and v.weight > 0})
        self.uses_gan = "adversarial" in self.losses
        if self.uses_gan and discriminator is None:
            raise UserError("loss.adversarial.weight > 0 needs a discriminator; set discriminator=unet")
        self.discriminator = discriminator if self.uses_gan else None
        self.scale, self.optim_cfg, self.train_cfg = scale, optim, training
        self.bad_steps = 0  # consecutive steps with a non-finite loss or gradient (reset by a good step)
        self.skipped_steps = 0  # all such steps of the run, logged as train/skipped_steps
        self._bicubic_psnr: dict[str, float] = {}
        self._micro = 0  # batches accumulated into the current update
        self._critic_window_bad = False  # a non-finite critic loss in the current update: skip its step
        self._val_sums = torch.zeros(3, dtype=torch.float64)  # psnr_y, bicubic psnr_y, clips (this rank)
        self.val_scores: dict[str, float] = {}  # this rank's clip -> PSNR-Y of the last validation
        self.local_logs: dict[str, torch.Tensor] = {}  # this rank's loss terms of the last step (before the mean)
        if "perceptual" in self.losses and self.losses["perceptual"].random_backbone:
            log.warning("training with loss.perceptual.pretrained=false: the perceptual term uses a random VGG19")

    # ---- optimisers -------------------------------------------------------------------------
    def configure_optimizers(self):
        g, d = self.optim_cfg["generator"], self.optim_cfg["discriminator"]
        flow = [p for n, p in self.generator.named_parameters() if n.startswith("spynet.")]
        rest = [p for n, p in self.generator.named_parameters() if not n.startswith("spynet.")]
        groups = [{"params": rest}]
        if flow:
            groups.append({"params": flow, "lr": g["lr"] * self.optim_cfg["flow_lr_mult"]})
        opt_g = torch.optim.Adam(groups, lr=g["lr"], betas=tuple(g["betas"]), weight_decay=g["weight_decay"])
        steps = max(int(self.trainer.max_steps), 1) if self.trainer.max_steps > 0 else 100_000
        eta_min = self.optim_cfg["eta_min"]
        optimizers = [opt_g]
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, T_max=steps, eta_min=eta_min)]
        if self.discriminator is not None:
            opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=d["lr"], betas=tuple(d["betas"]),
                                     weight_decay=d["weight_decay"])
            optimizers.append(opt_d)
            gan_steps = max(steps - self.train_cfg["warmup_steps"], 1)
            schedulers.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt_d, T_max=gan_steps, eta_min=eta_min))
        return optimizers, schedulers

    # ---- training ---------------------------------------------------------------------------
    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.generator(lr)

    def in_gan_stage(self) -> bool:
        return self.global_step >= self.train_cfg["warmup_steps"]

    def generator_losses(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[dict, torch.Tensor]:
        terms = {}
        if "pingpong" in self.losses:
            sr_all = self.generator(pingpong_clip(lr))
            sr = sr_all[:, : lr.shape[1]]
            terms["pingpong"] = self.losses["pingpong"](sr_all)
        else:
            sr = self.generator(lr)
        terms["pixel"] = self.losses["pixel"](sr, hr)
        if not self.in_gan_stage():
            return terms, sr  # warm-up: PSNR-oriented, pixel loss only
        for name in ("perceptual", "texture", "frequency", "temporal"):
            if name in self.losses:
                terms[name] = self.losses[name](sr, hr)
        if "adversarial" in self.losses:
            self.discriminator.requires_grad_(False)
            fake = self.discriminator(sr)
            real = self.discriminator(hr).detach() if self.losses["adversarial"].relativistic else None
            terms["adversarial"] = self.losses["adversarial"].generator_loss(fake, real)
            self.discriminator.requires_grad_(True)
        return terms, sr

    def freeze_flow_early(self) -> None:
        """`optim.flow_freeze_steps`: the flow network (`spynet.*`) gets no gradient, so no update, for
        the first steps, while the rest learns to use its (pretrained) flow, as BasicVSR(++) trains."""
        frozen = self.global_step < int(self.optim_cfg.get("flow_freeze_steps", 0) or 0)
        for name, param in self.generator.named_parameters():
            if name.startswith("spynet."):
                param.requires_grad_(not frozen)

    def training_step(self, batch, batch_idx):
        lr, hr = batch["lr"], batch["hr"]
        optimizers = self.optimizers()
        opt_g = optimizers[0] if isinstance(optimizers, list) else optimizers
        schedulers = self.lr_schedulers()
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        accumulate = max(int(self.accumulate_grad_batches), 1)
        first, update = self._micro == 0, self._micro == accumulate - 1

        self.freeze_flow_early()
        terms, sr = self.generator_losses(lr, hr)
        loss_g = sum(terms.values())
        if not self._finite_on_all_ranks(loss_g):
            self._drop_window(optimizers)
            self._skip_bad_step(f"generator loss ({loss_g.item()})")
            return
        if first:
            opt_g.zero_grad(set_to_none=True)
        with self._gradient_sync(update):
            self.manual_backward(loss_g / accumulate)
        gan_step = self.uses_gan and self.in_gan_stage()
        d_loss = None
        if gan_step:  # the critic's backward now, its step after the generator's (sr is detached)
            d_loss = self.discriminator_backward(optimizers[1], sr.detach(), hr, first, update)
            self._critic_window_bad |= d_loss is None
        logs = {f"train/{k}": v.detach() for k, v in terms.items()}
        logs["train/loss_g"] = loss_g.detach()
        if d_loss is not None:
            logs["train/loss_d"] = d_loss.detach()
        self._micro += 1
        if update:
            self._micro = 0
            if self._check_gradients() and not gradients_finite(self.generator):
                self._drop_window(optimizers)
                self._skip_bad_step("generator gradients")
                return
            if self.train_cfg["grad_clip"] > 0:
                self.clip_gradients(opt_g, gradient_clip_val=self.train_cfg["grad_clip"],
                                    gradient_clip_algorithm="norm")
            opt_g.step()
            self.generator_ema.update_parameters(self.generator)
            schedulers[0].step()
            good = True
            if gan_step:
                good = self._critic_step(optimizers[1])
                schedulers[1].step()  # the critic's schedule starts with the GAN stage
            if good:
                self.bad_steps = 0
        self.local_logs = logs
        logs = self._mean_over_ranks(logs)
        logs["train/skipped_steps"] = float(self.skipped_steps)
        logs["train/lr"] = opt_g.param_groups[0]["lr"]
        logs["train/gan_stage"] = float(self.in_gan_stage())
        self.log_dict(logs, prog_bar=False, batch_size=lr.shape[0])
        self.log("loss", logs["train/loss_g"], prog_bar=True, logger=False, batch_size=lr.shape[0])

    def _critic_step(self, opt_d) -> bool:
        """Apply the critic's accumulated update; False when it was skipped (non-finite loss or gradients)."""
        bad, self._critic_window_bad = self._critic_window_bad, False
        if not bad and self._check_gradients() and not gradients_finite(self.discriminator):
            self._skip_bad_step("discriminator gradients")
            bad = True
        if bad:
            opt_d.zero_grad(set_to_none=True)
            return False
        # Step through the strategy, not the LightningOptimizer, so only the generator's
        # step counts towards global_step (precision plugins still apply).
        self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None, model=self)
        return True

    def discriminator_backward(self, opt_d, fake: torch.Tensor, real: torch.Tensor, first: bool,
                               update: bool) -> torch.Tensor | None:
        """The critic's loss and its backward pass; None when its loss was non-finite on some rank."""
        loss_d = self.losses["adversarial"].discriminator_loss(self.discriminator(real), self.discriminator(fake))
        if not self._finite_on_all_ranks(loss_d):
            self._skip_bad_step(f"discriminator loss ({loss_d.item()})")
            return None
        if first:
            opt_d.zero_grad(set_to_none=True)
        with self._gradient_sync(update):
            self.manual_backward(loss_d / max(int(self.accumulate_grad_batches), 1))
        return loss_d

    # ---- distributed helpers (no-ops on one process) ------------------------------------------
    def _finite_on_all_ranks(self, loss: torch.Tensor) -> bool:
        """Whether `loss` is finite on every rank: all ranks then skip or take a step together
        (one rank skipping a backward that the others run would hang DDP's all-reduce)."""
        return self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True)

    def _gradient_sync(self, sync: bool):
        """DDP's gradient all-reduce only on the backward of an update's last batch."""
        block = getattr(self.trainer.strategy, "block_backward_sync", None)
        return contextlib.nullcontext() if sync or block is None else block()

    def _drop_window(self, optimizers) -> None:
        """Forget the gradients accumulated for the current update (after a non-finite value)."""
        for opt in optimizers if isinstance(optimizers, list) else [optimizers]:
            opt.zero_grad(set_to_none=True)
        self._micro, self._critic_window_bad = 0, False

    def _mean_over_ranks(self, logs: dict) -> dict:
        """Each logged training value as the mean over ranks, in one all-reduce."""
        if self.trainer.world_size == 1:
            return logs
        keys = sorted(logs)
        values = torch.stack([torch.as_tensor(logs[k], dtype=torch.float32, device=self.device) for k in keys])
        values = self.trainer.strategy.reduce(values, reduce_op="mean")
        return dict(zip(keys, values))

    def _check_gradients(self) -> bool:
        """False under a fp16 GradScaler: it finds inf gradients itself and must see them to lower its scale."""
        return getattr(self.trainer.precision_plugin, "scaler", None) is None

    def _skip_bad_step(self, what: str) -> None:
        """Count a non-finite step (its update is not applied); stop after `training.max_bad_steps` in a row."""
        self.bad_steps += 1
        self.skipped_steps += 1
        self.log("train/skipped_steps", float(self.skipped_steps))
        log.warning("non-finite %s at step %d: update skipped (%d in a row, %d in this run)",
                    what, self.global_step, self.bad_steps, self.skipped_steps)
        if self.bad_steps >= self.train_cfg["max_bad_steps"]:
            callback = self.trainer.checkpoint_callback
            last = getattr(callback, "last_model_path", "") if callback is not None else ""
            saved = (f"last checkpoint, from before the problem: {last}" if last
                     else "no checkpoint was written before it")
            raise NonFiniteLossError(
                f"training stopped at step {self.global_step}: {self.bad_steps} steps in a row had non-finite "
                f"values (last: {what}); {saved}. Lower optim.generator.lr, keep training.grad_clip > 0 or "
                "check the data (limit: training.max_bad_steps)")

    # ---- validation -------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(3, dtype=torch.float64)
        self.val_scores = {}

    def validation_step(self, batch, batch_idx):
        if "pad" in batch and bool(batch["pad"][0]):
            return  # a DDP padding item (vsr.data.sampler.PaddedShards): counted by no rank
        lr, hr, name = batch["lr"], batch["hr"], batch["name"][0]
        sr = self.generator_ema.module(lr).clamp(0, 1)
        score = float(psnr_y(sr[0], hr[0], self.scale))
        if name not in self._bicubic_psnr:
            bicubic = upsample_frames(lr[0], self.scale).clamp(0, 1)
            self._bicubic_psnr[name] = float(psnr_y(bicubic, hr[0], self.scale))
        self.val_scores[name] = score
        self._val_sums += torch.tensor([score, self._bicubic_psnr[name], 1.0], dtype=torch.float64)

    def on_validation_epoch_end(self) -> None:
        """Mean PSNR-Y over all validation clips of all ranks: sums and clip count all-reduced."""
        sums = self._val_sums
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums.to(self.device), reduce_op="sum").cpu()
        if sums[2] == 0:
            return
        score, base = float(sums[0] / sums[2]), float(sums[1] / sums[2])
        # already the same on every rank: sync_dist's mean leaves the values as they are
        sync = self.trainer.world_size > 1
        self.log("val/psnr_y", score, prog_bar=True, sync_dist=sync)
        self.log("val/psnr_y_bicubic", base, sync_dist=sync)
        self.log("val/gain_db", score - base, prog_bar=True, sync_dist=sync)

    # ---- exact resume: RNG state travels with the checkpoint ---------------------------------
    def frozen_keys(self) -> list[str]:
        """State-dict keys of frozen backbones: sub-modules marked `frozen_backbone` (rebuilt from
        their own weights file when the run is built, like the perceptual loss's VGG19) whose
        parameters all stay frozen. Checkpoints leave them out."""
        keys = []
        for name, module in self.named_modules():
            if getattr(module, "frozen_backbone", False) and not any(p.requires_grad for p in module.parameters()):
                keys += [f"{name}.{key}" for key in module.state_dict()]
        return keys

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_state"] = capture_rng_state()
        checkpoint["bad_steps"] = self.bad_steps
        checkpoint["skipped_steps"] = self.skipped_steps
        for key in self.frozen_keys():  # e.g. the perceptual VGG19: most of a small run's checkpoint
            checkpoint["state_dict"].pop(key, None)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        own = self.state_dict()
        for key in self.frozen_keys():  # not saved (above): keep the ones this run built
            checkpoint["state_dict"].setdefault(key, own[key])
        restore_rng_state(checkpoint.get("rng_state"))
        planned = (checkpoint.get("lr_schedulers") or [{}])[0].get("T_max")
        steps = self._trainer.max_steps if self._trainer is not None else -1
        if planned and steps > 0 and planned != steps:
            log.warning("trainer.max_steps=%d but the resumed run planned %d: its cosine schedule goes on as "
                        "planned (steps past %d train at optim.eta_min). To train longer at a fresh schedule, "
                        "start a new run with init_from=CHECKPOINT", steps, planned, planned)
        self.bad_steps = checkpoint.get("bad_steps", 0)
        self.skipped_steps = checkpoint.get("skipped_steps", 0)
