"""One LightningModule for every model family: loss, optimizer, schedule, logging and data parallelism."""

import math
import random
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

from makemore.data.datamodule import Batch
from makemore.data.vocab import Vocabulary
from makemore.errors import ConfigError, TrainingDiverged
from makemore.evaluation import next_char_nll
from makemore.models import build_model
from makemore.optim import build_optimizer, build_scheduler, resolve_schedule, unwrapped_step


class LitLanguageModel(L.LightningModule):
    """Any model of makemore.models, from plain data (`data`: the file and split) so that a checkpoint rebuilds it."""

    def __init__(self, model: dict[str, Any], vocab: list[str], optimizer: dict[str, Any],
                 scheduler: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                 divergence_factor: float = 20.0):  # fmt: skip
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.vocab = Vocabulary(vocab)
        self.model = build_model(model, self.vocab.size)
        self.num_params = sum(p.numel() for p in self.model.parameters())
        self.manual_backward_pass = model.get("backward") == "manual"  # the model's hand-derived gradients
        self.divergence_loss = divergence_factor * math.log(self.vocab.size)  # this far above uniform's ln(V)
        self.stop_on_divergence = True  # off for the lr finder, whose sweep is meant to end in divergence
        self.plan = None  # the run's LoopPlan, set by build_trainer
        self.clip: tuple[float | None, str | None] = (None, None)  # the multi-step path's gradient clipping
        self.register_buffer("_loss_sum", torch.zeros(()), persistent=False)
        self._loss_count, self._lr = 0, float("nan")
        self._eval = [0.0, 0]  # val NLL sum (a tensor once summed) and target count
        self.schedule: dict[str, Any] | None = None  # the scheduler config with the run's length (configure_optimizers)
        self._resumed_schedule: dict[str, Any] | None = None
        self.last_losses: dict[str, float] = {}  # the latest mean train loss and val loss, for reports

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = build_optimizer(self.hparams.optimizer, self.model)
        steps = self.trainer.estimated_stepping_batches
        self.schedule = resolve_schedule(self.hparams.scheduler, steps)
        if self._resumed_schedule is not None:  # the schedule must go on as it was planned
            saved = resolve_schedule(self._resumed_schedule, steps)
            changed = [f"scheduler.{k}: {saved.get(k)!r} in the checkpoint, {self.schedule.get(k)!r} now"
                       for k in sorted((saved.keys() | self.schedule.keys()) - {"decay_at"})
                       if saved.get(k) != self.schedule.get(k)]  # fmt: skip
            if changed:
                raise ConfigError(
                    f"the checkpoint's run has another schedule, so this run can't continue it: {'; '.join(changed)}; "
                    "continue with the run length (trainer.max_steps or max_epochs) and scheduler it was started "
                    "with, or pin the scheduler's keys when you start a run to stop early and go on later"
                )
        if (scheduler := build_scheduler(self.schedule, optimizer)) is None:
            return {"optimizer": optimizer}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        xs, ys = batch  # one minibatch (B, T), (B[, T]); on the multi-step path k of them: (k, B, T), ...
        if not self.automatic_optimization:
            return self.take_steps(xs, ys)
        self._lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        if self.manual_backward_pass:  # gradients now; Lightning's zero_grad is skipped (optimizer_zero_grad)
            accumulate = self.trainer.accumulate_grad_batches
            if batch_idx % accumulate == 0:
                self.model.zero_grad()
            with torch.no_grad():
                loss = self.model.loss_and_grad(xs, ys, scale=1 / accumulate)
            if self.trainer.world_size > 1:  # DDP's gradient hooks are autograd's: average by hand
                self._average_gradients(list(self.model.parameters()))
        else:
            loss = next_char_nll(self.model(xs), ys)
        self._loss_sum += loss.detach()
        self._loss_count += 1
        return loss

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if not self.manual_backward_pass:
            super().backward(loss, *args, **kwargs)

    def optimizer_zero_grad(self, *args: Any, **kwargs: Any) -> None:
        if not self.manual_backward_pass:
            super().optimizer_zero_grad(*args, **kwargs)

    def take_steps(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """One step per minibatch with the bare torch optimizer and schedule, then Lightning's counters and the log."""
        optimizer = self.optimizers().optimizer
        step, scheduler, group = unwrapped_step(optimizer), self.lr_schedulers(), optimizer.param_groups[0]
        model, loss_sum, (clip, algorithm) = self.model, self._loss_sum, self.clip
        params, data_parallel = list(model.parameters()), self.trainer.world_size > 1
        clip_grads = torch.nn.utils.clip_grad_value_ if algorithm == "value" else torch.nn.utils.clip_grad_norm_
        with torch.inference_mode(self.manual_backward_pass):  # hand-derived gradients: no autograd bookkeeping
            for x, y in zip(xs, ys, strict=True):
                for p in params:
                    p.grad = None
                if self.manual_backward_pass:
                    loss = model.loss_and_grad(x, y)
                else:
                    loss = next_char_nll(model(x), y)
                    loss.backward()
                if data_parallel:
                    self._average_gradients(params)
                if clip:
                    clip_grads(params, clip)
                lr = group["lr"]
                step()
                if scheduler is not None:
                    scheduler.step()
                loss_sum += loss.detach()
        self._lr = lr
        self._loss_count += len(xs)
        self.plan.advance(len(xs))
        self._after_steps(self.global_step)
        return loss.detach()

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """One-step path: Lightning's step, then the train-loss log of that step."""
        super().optimizer_step(*args, **kwargs)
        self._after_steps(self.global_step + 1)  # Lightning counts the step once this hook has returned

    def _after_steps(self, step: int) -> None:
        """Log mean train loss and lr every log_every_n_steps steps and at the last (0: none, divergence every 100)."""
        every, last = self.trainer.log_every_n_steps, step >= self.plan.total_steps if self.plan else False
        if last or (step % every == 0 if every else self._loss_count >= 100):
            self._log_train_loss(step, log=bool(every))

    def _average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Every process's gradients -> their mean, in one all-reduce: every process takes the same step."""
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.trainer.world_size
        for g, mean in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            g.copy_(mean.view_as(g))

    def _log_train_loss(self, step: int, log: bool) -> None:
        """Mean loss since the last log over all processes: the loop's only host sync, where a diverged run stops."""
        mean = self.trainer.strategy.reduce(self._loss_sum / self._loss_count, reduce_op="mean").item()
        if self.stop_on_divergence and (not math.isfinite(mean) or mean > self.divergence_loss):
            raise TrainingDiverged(
                f"training diverged: mean loss {mean} over steps {step - self._loss_count + 1}-{step} at lr "
                f"{self._lr:g}; lower optimizer.lr and rerun (checkpoints/last.ckpt, if any, holds the last "
                "validated weights)"
            )
        self._loss_sum.zero_()
        self._loss_count, self.last_losses["train_loss"] = 0, mean
        if log:  # straight to the loggers, at the step self.log would use (self.log costs ~2 ms a call)
            for logger in self.loggers:
                logger.log_metrics({"train_loss": mean, "lr": self._lr}, step=self.plan.log_step())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What a resumed run needs beyond what Lightning saves, to continue bit for bit."""
        checkpoint["schedule"] = self.schedule
        checkpoint["train_loss_since_log"] = {"sum": self._loss_sum.detach().cpu().clone(), "count": self._loss_count}
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_schedule = checkpoint["schedule"]
        self._loss_sum.copy_(checkpoint["train_loss_since_log"]["sum"])
        self._loss_count, states = checkpoint["train_loss_since_log"]["count"], checkpoint["rng_states"]
        torch.set_rng_state(states["torch"])
        random.setstate(states["python"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    def on_validation_start(self) -> None:
        """BatchNorm's running statistics: each process keeps its own; their mean is validated and saved."""
        if self.trainer.world_size > 1 and not self.trainer.sanity_checking:
            for buffer in self.model.buffers():
                if buffer.is_floating_point():
                    dist.all_reduce(buffer)
                    buffer.div_(self.trainer.world_size)

    on_train_end = on_validation_start  # and once more for the final weights

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        self._eval[0] = next_char_nll(self.model(x), y, reduction="sum").double() + self._eval[0]
        self._eval[1] += int(y.ne(-100).sum())

    def on_validation_epoch_end(self) -> None:
        """The exact mean NLL per character over the split (DDP: the processes' sums added), as `val_loss`."""
        totals = torch.tensor([float(self._eval[0]), float(self._eval[1])], dtype=torch.float64, device=self.device)
        nll, count = self.trainer.strategy.reduce(totals, reduce_op="sum").tolist()
        self._eval = [0.0, 0]
        self.log("val_loss", nll / count, sync_dist=True)  # equal on every process already
        if not self.trainer.sanity_checking:
            self.last_losses["val_loss"] = nll / count
