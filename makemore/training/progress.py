"""Training progress in optimizer steps, on stderr: a live bar on a terminal, plain lines in a log file."""

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from tqdm import tqdm


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class StepProgress(ProgressBar):
    """Counts optimizer steps, not Lightning calls. On a terminal: one tqdm bar (step/max_steps, loss, val
    loss, steps/s), refreshed every `refresh_rate` steps; validation draws no bar of its own. Otherwise (output
    redirected to a file): one line every `every` steps (null: about 20 lines per run) and at the end,
    `step 1000/2000 | loss 2.4102 | val 2.4213 | 1698 steps/s | ETA 0m01s`. Only the first process reports.
    """

    multi_step_safe = True  # reads trainer.global_step, which counts every step of a call

    def __init__(self, refresh_rate: int = 1000, every: int | None = None, terminal: bool | None = None):
        super().__init__()
        self.refresh_rate = refresh_rate
        self.every = every
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._enabled = True
        self._bar: tqdm | None = None
        self._pending: dict[str, Any] | None = None

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _active(self, trainer: L.Trainer) -> bool:
        return self._enabled and trainer.is_global_zero

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_step, self._start_time = trainer.global_step, time.perf_counter()
        self._shown = trainer.global_step
        self._every = self.every or max(1, trainer.max_steps // 20)
        if self._active(trainer) and self.terminal:
            self._bar = tqdm(
                total=trainer.max_steps, initial=trainer.global_step, desc="train", unit="step", file=sys.stderr
            )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        if not self._active(trainer):
            return
        self._flush(pl_module)  # a line waiting for a validation that did not come
        step, last = trainer.global_step, trainer.global_step >= trainer.max_steps
        if self._bar is not None:
            if step - self._shown >= self.refresh_rate or last:
                self._bar.n = step
                metrics = self.get_metrics(trainer, pl_module)
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items() if isinstance(v, float)})
                self._shown = step
        elif step // self._every > self._shown // self._every or last:
            self._shown = step
            rate = (step - self._start_step) / max(time.perf_counter() - self._start_time, 1e-9)
            losses = self.get_metrics(trainer, pl_module)  # the module has logged this step's loss already
            self._pending = {"step": step, "max_steps": trainer.max_steps, "rate": rate, "loss": losses.get("loss")}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None and not trainer.sanity_checking:
            self._flush(pl_module, with_val=True)  # the val loss of this very step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(pl_module)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _flush(self, pl_module: L.LightningModule, with_val: bool = False) -> None:
        """Print the waiting line, with its step's latest train loss and, right after a validation, its val loss."""
        if self._pending is None:
            return
        p, self._pending = self._pending, None
        losses = getattr(pl_module, "last_losses", {})
        parts = [f"step {p['step']}/{p['max_steps']}"]
        if p["loss"] is not None:
            parts.append(f"loss {p['loss']:.4f}")
        if with_val and "val_loss" in losses:
            parts.append(f"val {losses['val_loss']:.4f}")
        parts.append(f"{p['rate']:.0f} steps/s")
        parts.append(f"ETA {_duration((p['max_steps'] - p['step']) / max(p['rate'], 1e-9))}")
        print(" | ".join(parts), file=sys.stderr, flush=True)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return dict(getattr(pl_module, "last_losses", {}))
