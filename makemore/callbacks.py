"""Callbacks for this project's own semantics: several optimizer steps per Lightning call."""

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """Counts optimizer steps, not Lightning calls, so the bar reads step/max_steps and its rate is steps/s."""

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        bar.total = trainer.max_steps
        bar.unit = "step"
        bar.n = bar.initial = trainer.global_step  # a resumed run continues the count
        bar.set_description("train")
        self._shown_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        step = trainer.global_step
        if self.is_enabled and (step - self._shown_step >= self.refresh_rate or step >= trainer.max_steps):
            self._shown_step = step
            self.train_progress_bar.n = step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))  # also refreshes

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class ValidateAtLastStep(L.Callback):
    """Runs the validation loop at max_steps even when it is not a multiple of val_every, so the final
    weights are scored and can become best.ckpt (Lightning validates on a stop request)."""

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class ValidationTimer(L.Callback):
    """Seconds spent in validation loops during fit, so training speed can be reported without them."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def on_validation_start(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, *_: Any) -> None:
        self.seconds += time.perf_counter() - self._start
