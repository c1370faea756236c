"""LoopPlan: how many optimizer steps each Lightning call takes, where sampling continues, what Lightning is told.

On the multi-step path (default) a call runs up to `steps_per_call` steps in LitLanguageModel.training_step, as
Lightning's per-call cost exceeds a step of these models; the one-step path (one minibatch per call, automatic
optimization) serves what needs per-step hooks (LoopPlan's reasons). Lightning's private attributes appear in this
file only, guarded by tests/test_lightning_contract.py."""

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

log = logging.getLogger(__name__)

PER_STEP_HOOKS = ("on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
                  "on_before_optimizer_step", "on_before_zero_grad")  # fmt: skip


def _acts_per_step(callback: Callback) -> bool:
    """Whether a callback acts in a per-batch hook (ours, EarlyStopping, a validation ModelCheckpoint don't)."""
    if getattr(callback, "multi_step_safe", False) or isinstance(callback, EarlyStopping):
        return False
    if isinstance(callback, ModelCheckpoint):
        return bool(callback._every_n_train_steps or callback._train_time_interval)
    return any(getattr(type(callback), hook) is not getattr(Callback, hook) for hook in PER_STEP_HOOKS)


class LoopPlan(L.Callback):
    """Owns the loop's decisions; the data module, the LightningModule and the callbacks ask it."""

    multi_step_safe = True

    def __init__(self, steps_per_call: int, trainer_args: Mapping[str, Any], callbacks: list, subclass: str | None):
        reasons = [f"steps_per_call={steps_per_call}"] if steps_per_call == 1 else []
        if trainer_args.get("accumulate_grad_batches", 1) > 1:
            reasons.append(f"trainer.accumulate_grad_batches={trainer_args['accumulate_grad_batches']}")
        if trainer_args.get("max_time") is not None:
            reasons.append("trainer.max_time (Lightning's Timer checks the time after every batch)")
        if isinstance(trainer_args.get("val_check_interval"), str | dict):
            reasons.append("a time-based trainer.val_check_interval")
        if subclass:
            reasons.append(f"the module is {subclass}, a subclass")
        if per_step := [type(c).__name__ for c in callbacks if _acts_per_step(c)]:
            reasons.append(f"{', '.join(per_step)} acts on every training batch")
        self.steps_per_call = 1 if reasons else steps_per_call
        self.multi_step = self.steps_per_call > 1
        self.reason = "; ".join(reasons) or None
        self.trainer: L.Trainer | None = None  # set by build_trainer
        self.total_steps: float = 0  # Lightning's estimated_stepping_batches

    def on_train_start(self, trainer: L.Trainer, *_: Any) -> None:
        self.total_steps = trainer.estimated_stepping_batches
        if trainer.max_epochs not in (None, -1) and self.total_steps != trainer.max_steps:
            log.info("trainer.max_epochs=%d: %d optimizer steps (%d per epoch)", trainer.max_epochs,
                     self.total_steps, trainer.num_training_batches // trainer.accumulate_grad_batches)  # fmt: skip

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        """At the run's last step, ask Lightning to stop: it then validates, so the final weights are scored."""
        if trainer.global_step >= self.total_steps:
            trainer.should_stop = True

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """The step count into both optimizer-step counters (global_step reads the running path's): either resumes."""
        loop = checkpoint["loops"]["fit_loop"]
        automatic = loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]
        manual = loop["epoch_loop.manual_optimization.optim_step_progress"]
        source, target = (automatic, manual) if pl_module.automatic_optimization else (manual, automatic)
        for part in ("total", "current"):
            target[part] = {**target[part], **{k: source[part][k] for k in ("ready", "completed")}}

    def position(self) -> tuple[int, int, int]:
        """Minibatches of the run so far, of this epoch so far, and in this epoch (after limit_train_batches)."""
        progress = self.trainer.fit_loop.epoch_loop.batch_progress
        return progress.total.ready, progress.current.ready, int(self.trainer.num_training_batches)

    def next_call(self, total: int, in_epoch: int) -> int:
        """Steps in the next call (up to steps_per_call) after `total`: it ends where Lightning or a callback acts."""
        if not self.multi_step:
            return 1
        trainer = self.trainer
        k = min(self.steps_per_call, int(trainer.num_training_batches) - in_epoch, int(self.total_steps) - total)
        across = [trainer.log_every_n_steps]
        if isinstance(trainer.val_check_batch, int):
            if trainer.check_val_every_n_epoch is None:
                across.append(trainer.val_check_batch)
            else:
                k = min(k, trainer.val_check_batch - in_epoch % trainer.val_check_batch)
        across += [getattr(c, "step_interval", None) or 0 for c in trainer.callbacks]
        return max(1, min([k] + [n - total % n for n in across if n and n > 0]))

    def advance(self, steps: int) -> None:
        """After a `steps`-step call (Lightning counted one), its counters get the rest: all count optimizer steps."""
        trainer, loop = self.trainer, self.trainer.fit_loop.epoch_loop
        loop.manual_optimization.optim_step_progress.increment_by(steps)  # global_step
        in_epoch = loop.batch_progress.current.ready + steps - 1
        loop.batch_progress.increment_by(steps - 1, is_last_batch=in_epoch >= trainer.num_training_batches)
        loop._batches_that_stepped += steps - 1

    def log_step(self) -> int:
        """The loggers' step axis (self.log's, LearningRateMonitor's): the optimizer steps before the current one."""
        return self.trainer.fit_loop.epoch_loop._batches_that_stepped

    def validation_follows(self) -> bool:
        """Whether Lightning validates right after this call (asked from on_train_batch_end)."""
        return bool(self.trainer.fit_loop.epoch_loop._should_check_val_fx(self.trainer.fit_loop._data_fetcher))


def plan_of(trainer: L.Trainer) -> LoopPlan:
    """The run's plan (the callbacks' way to it)."""
    return next(c for c in trainer.callbacks if isinstance(c, LoopPlan))
