"""The training progress bar: generator steps over the whole run."""

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import _update_n


class StepProgressBar(TQDMProgressBar):
    """One bar from the run's first step to `trainer.max_steps` (a resumed run starts where it
    stopped; its rate and ETA count only this run's steps). Lightning's own bar restarts every
    epoch and reads "Epoch 0/-2" when epochs are unbounded, as they are here."""

    def on_train_epoch_start(self, trainer, *_) -> None:
        if trainer.max_steps <= 0:  # a run bounded by epochs: Lightning's per-epoch bar is right
            return super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:  # first epoch of this run only; later epochs go on counting
            bar.reset(total=trainer.max_steps)
            bar.initial = bar.n = trainer.global_step
            bar.set_description("train steps")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.max_steps <= 0:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step = trainer.global_step
        if self._should_update(step, self.train_progress_bar.total):
            _update_n(self.train_progress_bar, step)
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger's version number, not a training metric
        # dB to 0.01 as train.py's result line; the bar's own format keeps 3 digits (30.35 read "30.40")
        return {k: f"{v:.2f}" if k.startswith("val/") and isinstance(v, float) else v for k, v in metrics.items()}
