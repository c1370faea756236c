"""How Lightning's loop runs makemore's steps: every Trainer argument checked at the door, then one of two paths.

- The **multi-step path** (the default): one Lightning call runs up to `steps_per_call` optimizer steps inside
  LitLanguageModel.training_step, because Lightning's per-call machinery costs more than one step of these small
  models. Lightning's own loop still decides everything, in honest units: after each call the module advances
  Lightning's counters by the steps it took (`advance_counters`), and each call ends exactly where something
  happens (`chunk_length`: a validation, a log, a checkpoint, the end of an epoch or of the run), so
  val_check_interval, log_every_n_steps, max_epochs, limit_train_batches, min_steps ... mean what Lightning's
  docs say. A step is an optimizer step, a training batch one minibatch, an epoch ceil(train targets /
  batch_size) minibatches.
- The **one-step path**: one minibatch per call under Lightning's automatic optimization, taken when something
  needs Lightning's per-step hooks (a callback acting on every batch, gradient accumulation, a subclass of the
  module, steps_per_call=1). The run says so once.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

# Callback hooks Lightning calls once per training batch: on the multi-step path they would see a call of up to
# steps_per_call steps, so a callback that acts in them runs the one-step path.
PER_STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
)


def steps_per_epoch(trainer: Mapping[str, Any], minibatches: int) -> int:
    """Optimizer steps per epoch of `minibatches` minibatches, as Lightning counts them: after
    limit_train_batches or overfit_batches (a number of minibatches, or a fraction), over accumulate_grad_batches."""
    limit = trainer.get("overfit_batches") or trainer.get("limit_train_batches")
    if isinstance(limit, float):
        minibatches = int(minibatches * limit)
    elif isinstance(limit, int):
        minibatches = min(minibatches, limit)
    return max(1, math.ceil(minibatches / trainer.get("accumulate_grad_batches", 1)))


@dataclass
class TrainingPath:
    """Which path a run takes: `steps_per_call` > 1 is the multi-step path; 1 is Lightning's automatic
    optimization, one minibatch per call, with `reason` saying why."""

    steps_per_call: int
    reason: str | None = None


def _acts_per_step(callback: Callback) -> bool:
    """Whether a callback does something in a per-batch hook that the multi-step path would call once per call.
    makemore's own callbacks and Lightning's ModelCheckpoint saving on validation, and EarlyStopping, act only
    where the multi-step path ends a call (see chunk_length)."""
    if getattr(callback, "multi_step_safe", False):
        return False
    if isinstance(callback, ModelCheckpoint):
        return bool(callback._every_n_train_steps or callback._train_time_interval)
    if isinstance(callback, EarlyStopping):
        return False
    return any(getattr(type(callback), hook) is not getattr(Callback, hook) for hook in PER_STEP_HOOKS)


def choose_path(
    most_steps_per_call: int, trainer: Mapping[str, Any], callbacks: list[Callback], subclass: type | None
) -> TrainingPath:
    """The multi-step path unless something needs Lightning's own step-by-step loop (`subclass`: the user's
    subclass of LitLanguageModel, whose hooks Lightning's loop calls as it documents them; None for ours)."""
    reasons = []
    if most_steps_per_call == 1:
        reasons.append("steps_per_call=1")
    if trainer.get("accumulate_grad_batches", 1) > 1:
        reasons.append(f"trainer.accumulate_grad_batches={trainer['accumulate_grad_batches']}")
    if trainer.get("max_time") is not None:
        reasons.append("trainer.max_time (Lightning's Timer checks the time after every batch)")
    interval = trainer.get("val_check_interval")
    if isinstance(interval, str | dict):
        reasons.append("a time-based trainer.val_check_interval")
    if subclass is not None:
        reasons.append(f"the module is {subclass.__name__}, a subclass")
    per_step = [type(c).__name__ for c in callbacks if _acts_per_step(c)]
    if per_step:
        reasons.append(f"{', '.join(per_step)} acts on every training batch")
    if reasons:
        return TrainingPath(1, "; ".join(reasons))
    return TrainingPath(most_steps_per_call)


def chunk_length(trainer: L.Trainer, most: int, total: int, in_epoch: int) -> int:
    """Optimizer steps in the next call of the multi-step path, starting after `total` steps of the run and
    `in_epoch` minibatches of this epoch: at most `most`, and ending exactly at the next step where Lightning or a
    callback does something (a validation, a log, a checkpoint every N steps, the end of the epoch or the run)."""
    k = min(most, int(trainer.num_training_batches) - in_epoch)
    if trainer.max_steps >= 0:
        k = min(k, trainer.max_steps - total)
    across = [trainer.log_every_n_steps]
    val_every = trainer.val_check_batch
    if isinstance(val_every, int):
        if trainer.check_val_every_n_epoch is None:
            across.append(val_every)
        else:
            k = min(k, val_every - in_epoch % val_every)
    for callback in trainer.callbacks:
        across.append(getattr(callback, "step_interval", None) or 0)
        if isinstance(callback, ModelCheckpoint):
            across.append(callback._every_n_train_steps or 0)
    for n in across:
        if n and n > 0:
            k = min(k, n - total % n)
    return max(1, k)


def advance_counters(trainer: L.Trainer, steps: int) -> None:
    """Tell Lightning's loop that this call took `steps` optimizer steps on as many minibatches, so global_step,
    batch_idx, the epoch's end, val_check_interval, log_every_n_steps and the logging step axis all count
    optimizer steps. Lightning counts the call itself as one; these private counters (guarded by
    tests/test_lightning_contract.py) get the rest."""
    loop = trainer.fit_loop.epoch_loop
    loop.manual_optimization.optim_step_progress.increment_by(steps)  # global_step
    extra = steps - 1
    if extra:
        in_epoch = loop.batch_progress.current.ready + extra
        loop.batch_progress.increment_by(extra, is_last_batch=in_epoch >= trainer.num_training_batches)
        loop._batches_that_stepped += extra
    else:
        in_epoch = loop.batch_progress.current.ready
        loop.batch_progress.is_last_batch = in_epoch >= trainer.num_training_batches


def log_step(trainer: L.Trainer) -> int:
    """The step axis of Lightning's loggers (what self.log and LearningRateMonitor use): the optimizer steps
    taken before the current one, so the 100th step's loss, and a validation after it, are at step 99."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether Lightning runs a validation right after this call (asked from on_train_batch_end)."""
    loop = trainer.fit_loop.epoch_loop
    return bool(loop._should_check_val_fx(trainer.fit_loop._data_fetcher))
