"""LightningModule for frame interpolation: triplets cut from clip batches, pixel loss on every stage.

`python train.py model=interp ...` selects it (the model says `task = "interpolation"`); it shares
train.py's data, trainer, callbacks, checkpoints and logging with super-resolution training. The
checkpoint layout is the same (`generator.*`, `generator_ema.module.*`), so evaluate.py and
export.py read it the same way.
"""

import logging
import random

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vsr.interpolation.baselines import blend
from vsr.losses import PixelLoss
from vsr.metrics import psnr
from vsr.training.rng import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)


def triplet(num_frames: int, rng: random.Random, any_time: float = 0.3) -> tuple[int, int, int]:
    """Frame indices `(a, m, b)` with a < m < b of a clip of `num_frames`: mostly the middle frame of a
    gap of 2 or 4 frames (what evaluation measures); with probability `any_time` any m in between
    (so `interpolate=3`, t = 1/3 and 2/3, is trained too)."""
    a = rng.randrange(0, num_frames - 2)
    b = rng.randrange(a + 2, num_frames)
    if rng.random() < any_time:
        return a, rng.randrange(a + 1, b), b
    if (b - a) % 2:
        b -= 1
    return a, (a + b) // 2, b


def middle_psnr_y(model, clip: torch.Tensor) -> torch.Tensor:
    """PSNR-Y of each held-out frame t (1 .. T-2) of `clip` `(T, 3, H, W)` predicted from t-1 and t+1."""
    pred = model(clip[:-2], clip[2:], 0.5).clamp(0, 1)
    return psnr(pred, clip[1:-1], y_channel=True)


class InterpModule(L.LightningModule):
    """Train a frame interpolator (`generator(frame0, frame1, t)`) to predict a held-out frame.

    Each step cuts one triplet per batch out of `batch["hr"]` `(B, T, 3, H, W)` (see `triplet`),
    and applies a Charbonnier loss to the final output plus `stage_weight` times the loss of each
    intermediate fused frame. Validation: PSNR-Y of every middle frame of the validation clips
    predicted from its neighbours, for the EMA model and the linear blend (`val/gain_db` = model - blend).
    """

    def __init__(self, generator: nn.Module, optim: dict, training: dict, generator_config: dict | None = None,
                 training_config: dict | None = None, stage_weight: float = 0.5):
        super().__init__()
        self.save_hyperparameters(ignore=["generator"])
        self.generator = generator
        self.generator_ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(training["ema_decay"]),
                                           use_buffers=True)
        self.generator_ema.requires_grad_(False)
        self.pixel = PixelLoss(kind="charbonnier")
        self.optim_cfg, self.train_cfg, self.stage_weight = optim, training, stage_weight
        self.rng = random.Random(0)
        self._blend_psnr: dict[str, float] = {}

    def configure_optimizers(self):
        g = self.optim_cfg["generator"]
        opt = torch.optim.AdamW(self.generator.parameters(), lr=g["lr"], betas=tuple(g["betas"]),
                                weight_decay=g["weight_decay"])
        steps = max(int(self.trainer.max_steps), 1) if self.trainer.max_steps > 0 else 100_000
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=self.optim_cfg["eta_min"])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def training_step(self, batch, batch_idx):
        clip = batch["hr"]
        a, m, b = triplet(clip.shape[1], self.rng)
        t = (m - a) / (b - a)
        stages = self.generator.stages(clip[:, a], clip[:, b], t)
        target = clip[:, m]
        final = self.pixel(stages[-1], target)
        inter = sum(self.pixel(s, target) for s in stages[:-1]) / max(len(stages) - 1, 1)
        loss = final + self.stage_weight * inter
        if not torch.isfinite(loss):
            log.warning("non-finite loss at step %d: update skipped", self.global_step)
            return None
        self.log_dict({"train/pixel": final.detach(), "train/stages": inter.detach(), "train/loss_g": loss.detach(),
                       "train/lr": self.optimizers().param_groups[0]["lr"]}, batch_size=clip.shape[0])
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=clip.shape[0])
        return loss

    def on_before_optimizer_step(self, optimizer):
        if self.train_cfg.get("grad_clip", 0) > 0:
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.train_cfg["grad_clip"])

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.generator_ema.update_parameters(self.generator)

    def validation_step(self, batch, batch_idx):
        clip, name = batch["hr"][0], batch["name"][0]
        score = middle_psnr_y(self.generator_ema.module, clip).mean()
        if name not in self._blend_psnr:
            self._blend_psnr[name] = float(middle_psnr_y(lambda x, y, t: blend(x, y, t), clip).mean())
        base = self._blend_psnr[name]
        self.log("val/psnr_y", score, batch_size=1, prog_bar=True)
        self.log("val/psnr_y_blend", base, batch_size=1)
        self.log("val/gain_db", score - base, batch_size=1, prog_bar=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_state"] = capture_rng_state() | {"triplets": torch.tensor(self.rng.getrandbits(62))}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("rng_state")
        restore_rng_state(state)
        if state and "triplets" in state:
            self.rng.seed(int(state["triplets"]))
