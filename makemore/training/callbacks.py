"""Lightning callbacks for this project's own needs: step-based progress and timing, pictures and samples."""

import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import TensorBoardLogger

from makemore.errors import TrainingInterrupted
from makemore.plots import embedding_figure, missing_glyphs_quiet, save_figure
from makemore.sampling import generate
from makemore.training.plan import log_step, validation_follows


class ValidateAtLastStep(L.Callback):
    """Runs the validation loop at max_steps even when it is not a multiple of val_check_interval, so the final
    weights are scored and can become best.ckpt (Lightning validates on a stop request)."""

    multi_step_safe = True  # acts at the end of the run, where the multi-step path ends a call

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class LastCheckpoint(Checkpoint):
    """checkpoints/last.ckpt, everything a resumed run needs to continue bit for bit: written every
    `every_n_steps` optimizer steps, after every validation (so also at the last step), and on Ctrl-C
    or SIGTERM, after which the run stops with a message saying how to resume.

    Writes happen only between Lightning calls, where the saved state is whole; when Lightning runs a
    validation right after the call, the write waits for its end, so a resumed run neither repeats nor skips it.
    A first Ctrl-C finishes the current call; a second one interrupts at once. Under DDP the processes
    agree at every call whether any of them was signalled, so all of them save (rank zero writes) and stop.
    """

    multi_step_safe = True  # the multi-step path ends a call at every `step_interval`

    def __init__(self, dirpath: str, every_n_steps: int):
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_steps = every_n_steps
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, *_: Any) -> None:
        # After Lightning's own SIGTERM handler (registered just before): this one replaces it, so that
        # SIGTERM, like Ctrl-C, stops between calls, after saving.
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, self._request_stop)

    def _request_stop(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    def teardown(self, *_: Any, **__: Any) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    @property
    def step_interval(self) -> int:
        return self.every_n_steps

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.fast_dev_run or validation_follows(trainer):
            return  # nothing is saved in a fast dev run; after a validation on_validation_end saves
        if self._agree_on_stop(trainer):
            self._save_and_stop(trainer)
        elif trainer.global_step % self.every_n_steps == 0:
            trainer.save_checkpoint(self.path, weights_only=False)

    def on_validation_end(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        if self._agree_on_stop(trainer):
            self._save_and_stop(trainer)
        trainer.save_checkpoint(self.path, weights_only=False)

    def _agree_on_stop(self, trainer: L.Trainer) -> bool:
        """Whether any process was signalled (SIGTERM wins over Ctrl-C): one tiny all-reduce per call under DDP."""
        if trainer.world_size > 1:
            signum = trainer.strategy.reduce(torch.tensor(self._stop_signal or 0), reduce_op="max")
            self._stop_signal = int(signum) or None
        return self._stop_signal is not None

    def _save_and_stop(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        raise TrainingInterrupted(
            f"stopped by {signal.Signals(self._stop_signal).name} at step {trainer.global_step} of "
            f"{trainer.max_steps}; saved {self.path}. "
            f"Resume with: python scripts/train.py resume={self.path.parent.parent}",
            signum=self._stop_signal,
        )


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


class LossChart(L.Callback):
    """TensorBoard's Custom Scalars tab: train and val loss on one chart, where over-fitting shows at a glance
    (the Scalars tab draws one chart per tag)."""

    def on_train_start(self, trainer: L.Trainer, *_: Any) -> None:
        writer = _tensorboard(trainer)
        if writer is not None and trainer.is_global_zero:
            charts = {"loss (train and val)": ["Multiline", ["loss/train", "loss/val"]], "lr": ["Multiline", ["lr"]]}
            writer.add_custom_scalars({"makemore": charts})


class EmbeddingPlot(L.Callback):
    """The seed's scatter of the embedding table C (dims 0 and 1) at every val check, as `path` and in
    TensorBoard's Images; the whole table goes to TensorBoard's Projector at the end of training."""

    def __init__(self, path: str, max_labels: int = 100):
        self.path = Path(path)
        self.max_labels = max_labels

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        table = pl_module.model.char_embedding()
        if trainer.sanity_checking or table is None or not trainer.is_global_zero:
            return
        fig = embedding_figure(table, pl_module.vocab.labels(), trainer.global_step, self.max_labels)
        writer = _tensorboard(trainer)
        if writer is not None:
            with missing_glyphs_quiet():
                writer.add_figure("embedding", fig, log_step(trainer), close=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, self.path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        table = pl_module.model.char_embedding()
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
            max_len=self.max_len,
            seed=self.seed,
        )
        writer.add_text("samples", "  \n".join(f"`{item}`" for item in items), log_step(trainer))
