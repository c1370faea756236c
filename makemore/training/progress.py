"""Training progress in optimizer steps, on stderr: a live bar on a terminal, plain lines in a log file."""

import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from tqdm import tqdm

from makemore.training.plan import plan_of


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class StepProgress(ProgressBar):
    """Optimizer steps, not Lightning calls, on the first process. A terminal: a tqdm bar refreshed every
    `refresh_rate` steps. Else a line every `every` steps (null: ~20 a run) and at the end, `step 1000/2000 |
    loss 2.4102 | val 2.4213 | 1698 steps/s | ETA 0m01s`, with the val loss when that very step was validated."""

    multi_step_safe = True  # reads trainer.global_step, which counts every step of a call

    def __init__(self, refresh_rate: int = 1000, every: int | None = None, terminal: bool | None = None):
        super().__init__()
        self.refresh_rate, self.every = refresh_rate, every
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._enabled, self._bar, self._pending = True, None, None

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = plan_of(trainer).total_steps
        self._total = int(total) if math.isfinite(total) else None
        self._start_step, self._start_time, self._shown = trainer.global_step, time.perf_counter(), trainer.global_step
        self._every = self.every or max(1, (self._total or 20_000) // 20)
        if self._enabled and trainer.is_global_zero and self.terminal:
            self._bar = tqdm(total=self._total, initial=trainer.global_step, desc="train", unit="step", file=sys.stderr)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        self._flush(pl_module)  # a line waiting for a validation that did not come
        step = trainer.global_step
        last = self._total is not None and step >= self._total
        if self._bar is not None and (step - self._shown >= self.refresh_rate or last):
            self._bar.n, self._shown = step, step
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in pl_module.last_losses.items()})
        elif self._bar is None and (step // self._every > self._shown // self._every or last):
            self._shown = step
            rate = (step - self._start_step) / max(time.perf_counter() - self._start_time, 1e-9)
            self._pending = {"step": step, "rate": rate, "loss": pl_module.last_losses.get("loss")}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None and not trainer.sanity_checking:
            self._flush(pl_module, with_val=True)

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
        if self._total is not None:
            parts.append(f"ETA {_duration((self._total - p['step']) / max(p['rate'], 1e-9))}")
        print(" | ".join(parts), file=sys.stderr, flush=True)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return dict(pl_module.last_losses)
