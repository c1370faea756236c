"""Lightning callbacks: last.ckpt and signals, progress in optimizer steps, loop timing, TensorBoard charts, samples."""

import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from tqdm import tqdm

from makemore.errors import TrainingInterrupted
from makemore.plots import embedding_figure, missing_glyphs_quiet, save_figure
from makemore.sampling import generate
from makemore.training.plan import plan_of


class LastCheckpoint(Checkpoint):
    """checkpoints/last.ckpt, for a bit-for-bit resume: every `every_n_steps` steps, after validations, and on Ctrl-C
    or SIGTERM (which stop the run); only between Lightning calls, so a resume neither repeats nor skips one."""

    multi_step_safe = True

    def __init__(self, dirpath: str, every_n_steps: int):
        self.path, self.step_interval = Path(dirpath) / "last.ckpt", every_n_steps  # a multi-step call ends at each
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._saved_step = -1

    def on_train_start(self, trainer: L.Trainer, *_: Any) -> None:
        # replaces Lightning's SIGTERM handler (registered just before): SIGTERM, like Ctrl-C, stops after saving
        self._previous_handlers = {s: signal.signal(s, self._request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def _request_stop(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    def teardown(self, *_: Any, **__: Any) -> None:
        while self._previous_handlers:
            signal.signal(*self._previous_handlers.popitem())

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        if trainer.fast_dev_run or plan_of(trainer).validation_follows():
            return  # nothing is saved in a fast dev run; after a validation on_validation_end saves
        self._stop_if_signalled(trainer)
        if trainer.global_step % self.step_interval == 0:
            self._save(trainer)

    def on_validation_end(self, trainer: L.Trainer, *_: Any) -> None:
        if not (trainer.sanity_checking or trainer.fast_dev_run):
            self._stop_if_signalled(trainer)
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, *_: Any) -> None:
        """The final state, also of a run that never validated (limit_val_batches=0)."""
        if not trainer.fast_dev_run and self._saved_step != trainer.global_step:
            self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_step = trainer.global_step

    def _stop_if_signalled(self, trainer: L.Trainer) -> None:
        """If any process was signalled (SIGTERM wins over Ctrl-C; one tiny all-reduce per call), save and stop."""
        if trainer.world_size > 1:
            signum = trainer.strategy.reduce(torch.tensor(self._stop_signal or 0), reduce_op="max")
            self._stop_signal = int(signum) or None
        if self._stop_signal is None:
            return
        self._save(trainer)
        total = plan_of(trainer).total_steps
        raise TrainingInterrupted(
            f"stopped by {signal.Signals(self._stop_signal).name} at step {trainer.global_step} of "
            f"{total if total == math.inf else int(total)}; saved {self.path}. "
            f"Resume with: python scripts/train.py resume={self.path.parent.parent}",
            signum=self._stop_signal,
        )


class StepProgress(ProgressBar):
    """Optimizer steps on the first process: a terminal's tqdm bar every `refresh_rate` steps, else a line every `every`
    (null: ~20 a run, where train loss is logged) and at the end, val loss after a validation; rate since the last."""

    multi_step_safe = True  # reads trainer.global_step, which counts every step of a call

    def __init__(self, refresh_rate: int = 1000, every: int | None = None, terminal: bool | None = None):
        super().__init__()
        self.refresh_rate, self.every = refresh_rate, every
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.is_enabled, self._bar, self._pending = True, None, None  # is_enabled: what Lightning reads

    def disable(self) -> None:
        self.is_enabled = False

    def enable(self) -> None:
        self.is_enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = plan_of(trainer).total_steps
        self._total = int(total) if math.isfinite(total) else None
        self._shown, self._line_time = trainer.global_step, time.perf_counter()  # last shown: its step and time
        grid = trainer.log_every_n_steps or 1  # lines where the loss they show was just logged: 200, 400, ... not 150
        self._every = self.every or grid * max(1, round((self._total or 20_000) / 20 / grid))
        if self.is_enabled and trainer.is_global_zero and self.terminal:
            self._bar = tqdm(total=self._total, initial=trainer.global_step, desc="train", unit="step", file=sys.stderr)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        if not (self.is_enabled and trainer.is_global_zero):
            return
        self._flush(pl_module)  # a line waiting for a validation that did not come
        step = trainer.global_step
        last = self._total is not None and step >= self._total
        if self._bar is not None and (step - self._shown >= self.refresh_rate or last):
            self._bar.n, self._shown = step, step
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in pl_module.last_losses.items()})
        elif self._bar is None and (step // self._every > self._shown // self._every or last):
            now = time.perf_counter()
            rate = (step - self._shown) / max(now - self._line_time, 1e-9)
            self._shown, self._line_time = step, now
            self._pending = {"step": step, "rate": rate, "loss": pl_module.last_losses.get("train_loss")}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(pl_module, with_val=True)  # a waiting line only: none in the sanity check, before training

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(pl_module)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _flush(self, pl_module: L.LightningModule, with_val: bool = False) -> None:
        """Print the waiting line: its step's train loss and, right after a validation, its val loss."""
        if self._pending is None:
            return
        p, self._pending = self._pending, None
        parts = [f"step {p['step']}/{self._total if self._total is not None else '?'}"]
        if p["loss"] is not None:
            parts.append(f"loss {p['loss']:.4f}")
        if with_val and "val_loss" in pl_module.last_losses:
            parts.append(f"val {pl_module.last_losses['val_loss']:.4f}")
        parts.append(f"{p['rate']:.0f} steps/s")
        eta = (self._total - p["step"]) / max(p["rate"], 1e-9) if self._total is not None else 0
        if eta >= 1:  # under a second left ("ETA 00:00") says nothing
            parts.append(f"ETA {tqdm.format_interval(eta)}")
        print(" | ".join(parts), file=sys.stderr, flush=True)


@dataclass(eq=False)
class TrainingClock(L.Callback):
    """Wall seconds of the training loop itself, validation excluded: per-step speed without setup costs."""

    seconds: float = 0.0
    _since: float = 0.0

    def on_train_start(self, *_: Any) -> None:
        self._since = time.perf_counter()

    on_validation_end = on_train_start  # after a validation the clock runs again

    def on_validation_start(self, trainer: L.Trainer, *_: Any) -> None:
        if not trainer.sanity_checking:
            self.seconds += time.perf_counter() - self._since

    on_train_end = on_validation_start  # the loop's last stretch


def tensorboard(trainer: L.Trainer) -> Any | None:
    """The SummaryWriter of the run's TensorBoard logger on the first process, else None."""
    loggers = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
    return loggers[0].experiment if loggers and trainer.is_global_zero else None


class LossChart(L.Callback):
    """TensorBoard's Custom Scalars tab: train and val loss on one chart, where over-fitting shows at a glance."""

    def on_train_start(self, trainer: L.Trainer, *_: Any) -> None:
        if (writer := tensorboard(trainer)) is not None:
            charts = {"loss (train and val)": ["Multiline", ["train_loss", "val_loss"]], "lr": ["Multiline", ["lr"]]}
            writer.add_custom_scalars({"makemore": charts})


@dataclass(eq=False)
class EmbeddingPlot(L.Callback):
    """The embedding table C's scatter (dims 0, 1) per validation, to `path` and TensorBoard; at the end, Projector."""

    path: str
    max_labels: int = 100

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        table = pl_module.model.char_embedding()
        if trainer.sanity_checking or table is None or not trainer.is_global_zero:
            return
        fig = embedding_figure(table, pl_module.vocab.labels(), trainer.global_step, self.max_labels)
        if (writer := tensorboard(trainer)) is not None:
            with missing_glyphs_quiet():
                writer.add_figure("embedding", fig, plan_of(trainer).log_step(), close=False)
        save_figure(fig, self.path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        table = pl_module.model.char_embedding()
        if table is not None and (writer := tensorboard(trainer)) is not None:
            labels = pl_module.vocab.labels()
            writer.add_embedding(table.detach().cpu(), metadata=labels, tag="C", global_step=trainer.global_step)


@dataclass(eq=False)
class SampleText(L.Callback):
    """A few sampled items as TensorBoard text at every validation, to watch them improve as the loss falls."""

    num_samples: int = 10
    max_len: int = 100
    seed: int = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or (writer := tensorboard(trainer)) is None:
            return
        items = generate(pl_module.model, pl_module.vocab, self.num_samples, max_len=self.max_len, seed=self.seed)
        writer.add_text("samples", "  \n".join(f"`{item}`" for item in items), plan_of(trainer).log_step())
