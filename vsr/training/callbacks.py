"""The checkpoint callback of `conf/callbacks/default.yaml` (`last_and_best`)."""

from lightning.pytorch.callbacks import ModelCheckpoint


class ValidationCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose step trigger (`every_n_train_steps`, = `trainer.val_check_interval`)
    saves when that step's validation ends: the best checkpoint is scored and named with the value
    the validation has just computed, and `last.ckpt` is refreshed at every trigger, improved or not.

    Lightning saves on the step trigger in `on_train_batch_end`, which runs before the validation of
    the same step: the best checkpoint got the previous validation's score (a step-1000 best was
    named and ranked with step 500's PSNR), and the save at the end of the validation was then
    skipped as "already saved at this step".

    The run's last step (`trainer.max_steps`) is validated and saved too, however short the run:
    a run of 5 steps with validations every 500 otherwise ended with no score and no metrics.csv.
    """

    def __init__(self, **kwargs):
        if kwargs.get("train_time_interval"):
            raise ValueError(f"{type(self).__name__} saves after validations; use ModelCheckpoint for timed saves")
        super().__init__(**kwargs)
        self._due = False  # the step trigger fired; save when the validation ends

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.monitor is None:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n, step = self._every_n_train_steps, trainer.global_step
        last = 0 < trainer.max_steps <= step
        if last and n >= 1 and step % n != 0:
            trainer.should_stop = True  # Lightning validates the step that stops a run
        if ((n >= 1 and step % n == 0) or last) and not self._should_skip_saving_checkpoint(trainer):
            self._due = True

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.monitor is None:
            return super().on_validation_end(trainer, pl_module)
        if self._due and not self._should_skip_saving_checkpoint(trainer):
            metrics = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, metrics)
            self._save_last_checkpoint(trainer, metrics)
            self._due = False
