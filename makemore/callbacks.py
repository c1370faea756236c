"""Lightning callbacks for this project's own needs: step-based progress and timing, pictures and samples."""

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger

from makemore.plots import embedding_figure, save_figure
from makemore.sampling import generate


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


class TrainingClock(L.Callback):
    """Wall seconds of the training loop itself (first to last step, validation excluded): per-step
    speed without the one-off costs of setting up the trainer or scoring the checkpoints."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._since = 0.0

    def on_train_start(self, *_: Any) -> None:
        self._since = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, *_: Any) -> None:
        if not trainer.sanity_checking:
            self.seconds += time.perf_counter() - self._since

    def on_validation_end(self, trainer: L.Trainer, *_: Any) -> None:
        self._since = time.perf_counter()

    def on_train_end(self, *_: Any) -> None:
        self.seconds += time.perf_counter() - self._since


def _tensorboard(trainer: L.Trainer) -> Any | None:
    """The SummaryWriter of the run's TensorBoard logger, if it has one."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


class EmbeddingPlot(L.Callback):
    """The seed's scatter of the embedding table C (dims 0 and 1) at every val check, as `path` and in
    TensorBoard's Images; the whole table goes to TensorBoard's Projector at the end of training."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        table = getattr(pl_module.model, "C", None)
        if trainer.sanity_checking or table is None or not trainer.is_global_zero:
            return
        fig = embedding_figure(table, pl_module.vocab.labels(), trainer.global_step)
        writer = _tensorboard(trainer)
        if writer is not None:
            writer.add_figure("embedding", fig, trainer.global_step, close=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, self.path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        table = getattr(pl_module.model, "C", None)
        writer = _tensorboard(trainer)
        if table is not None and writer is not None and trainer.is_global_zero:
            writer.add_embedding(
                table.detach().cpu(), metadata=pl_module.vocab.labels(), tag="C", global_step=trainer.global_step
            )


class SampleText(L.Callback):
    """A few sampled items as TensorBoard text at every val check, to watch them improve as the loss falls."""

    def __init__(self, num_samples: int = 10, max_len: int = 100, seed: int = 0):
        self.num_samples = num_samples
        self.max_len = max_len
        self.seed = seed

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        writer = _tensorboard(trainer)
        if trainer.sanity_checking or writer is None or not trainer.is_global_zero:
            return
        items = generate(
            pl_module.model,
            pl_module.vocab,
            self.num_samples,
            pl_module.model.block_size,
            max_len=self.max_len,
            seed=self.seed,
        )
        writer.add_text("samples", "  \n".join(f"`{item}`" for item in items), trainer.global_step)
