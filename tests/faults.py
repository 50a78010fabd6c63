"""Test-only fault injectors, added to a real train.py run with `+callbacks.NAME._target_=faults.X`
(the test puts tests/ on PYTHONPATH). Nothing here ships in the product's config."""

import os
import signal

import lightning as L
import torch


def _kill_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # like `kill -9`: no cleanup, no exception handlers


class KillAtStep(L.Callback):
    """SIGKILL the training process when the batch of generator step `step` starts."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step >= self.step:
            _kill_now()


class KillDuringSave(L.Callback):
    """SIGKILL the process inside the first checkpoint save at or after step `step`: after the
    temporary file is written, before it is renamed over last.ckpt."""

    def __init__(self, step: int):
        self.step = step

    def setup(self, trainer, pl_module, stage):
        import vsr.io.atomic as atomic

        real_fsync = os.fsync

        def fsync(fd):
            if trainer.global_step >= self.step:
                _kill_now()
            return real_fsync(fd)

        atomic.os = _OsProxy(fsync)


class _OsProxy:
    """`os` with `fsync` replaced (only inside vsr.io.atomic, which checkpoints are saved through)."""

    def __init__(self, fsync):
        self.fsync = fsync

    def __getattr__(self, name):
        return getattr(os, name)


class PoisonInputs(L.Callback):
    """Fill the LR input with NaN for batches `first` .. `first + count - 1` (count=-1: all later ones)."""

    def __init__(self, first: int, count: int = -1):
        self.first, self.count = first, count

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        index = trainer.fit_loop.epoch_loop.batch_progress.total.ready - 1
        if index >= self.first and (self.count < 0 or index < self.first + self.count):
            batch["lr"].fill_(float("nan"))


class PoisonGradients(L.Callback):
    """Make the gradients of `part` ("generator" or "discriminator") NaN on batches `first` .. `first + count - 1`."""

    def __init__(self, part: str, first: int, count: int = -1):
        self.part, self.first, self.count = part, first, count
        self.handles = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        index = trainer.fit_loop.epoch_loop.batch_progress.total.ready - 1
        if index >= self.first and (self.count < 0 or index < self.first + self.count):
            params = getattr(pl_module, self.part).parameters()
            self.handles = [p.register_hook(lambda g: torch.full_like(g, float("nan"))) for p in params]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for handle in self.handles:
            handle.remove()
        self.handles = []
