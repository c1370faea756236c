"""One LightningModule for every model family: loss, optimizer, schedule, logging and data parallelism."""

import math
import random
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

from makemore.data.vocab import Vocabulary
from makemore.errors import TrainingDiverged
from makemore.evaluation import next_char_nll
from makemore.models import build_model
from makemore.training.optim import FlatParameters, build_optimizer, build_scheduler, unwrapped_step
from makemore.training.plan import advance_counters, log_step

Batch = tuple[torch.Tensor, torch.Tensor]


class LitLanguageModel(L.LightningModule):
    """Wraps any model of makemore.models; all constructor arguments are plain data, so the checkpoint alone
    (weights + vocabulary + configs) rebuilds it through the registries. `data` records which file and
    split the weights were trained on (path, sha256, split, split_seed), so eval can recompute the split.

    Two ways to train (makemore.training.plan chooses, `use_path` sets it). One-step path: Lightning's automatic
    optimization takes each optimizer step from the loss training_step returns (clipping, accumulation, the
    schedule, as Lightning documents them). Multi-step path (steps_per_call > 1): training_step gets a chunk of
    k minibatches and takes k optimizer steps itself, then advances Lightning's counters by k, because for
    models this small Lightning's per-call machinery costs more than the step itself. Under DDP each step's
    gradients are averaged over the processes by one all-reduce, so every process takes the same step.
    Either way the mean train loss since the last log goes to the loggers on Lightning's step axis.
    """

    def __init__(
        self,
        model: dict[str, Any],
        vocab: list[str],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        divergence_factor: float = 20.0,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.vocab = Vocabulary(vocab)
        self.model = build_model(model, self.vocab.size)
        # A mean loss this far above the uniform model's ln(V) (3.3 nats for names.txt) is divergence,
        # not learning: the notebook's N(0,1) init starts near 8 x ln(V).
        self.divergence_loss = divergence_factor * math.log(self.vocab.size)
        self.stop_on_divergence = True  # off for the lr finder, whose sweep is meant to end in divergence
        self.use_path(1)
        self.register_buffer("_loss_sum", torch.zeros(()), persistent=False)
        self._loss_count = 0
        self._lr = float("nan")  # the lr of the latest step, logged with the loss
        self._eval_nll = torch.zeros((), dtype=torch.float64)
        self._eval_count = 0
        self._world_size = 1
        self.last_losses: dict[str, float] = {}  # the latest mean train loss and val loss, for progress reports
        self._flat: FlatParameters | None = None  # set by configure_optimizers

    def use_path(self, steps_per_call: int, clip_val: float | None = None, clip_algorithm: str | None = None) -> None:
        """1: the one-step path (automatic optimization; Lightning clips). More: the multi-step path, which clips
        as trainer.gradient_clip_val / gradient_clip_algorithm say (Lightning refuses them with manual
        optimization)."""
        self.automatic_optimization = steps_per_call == 1
        self.clip_val = clip_val or None
        self.clip_value_not_norm = clip_algorithm == "value"

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, self._flat = build_optimizer(self.hparams.optimizer, self.model)
        scheduler = build_scheduler(self.hparams.scheduler, optimizer)
        if scheduler is None:
            return {"optimizer": optimizer}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
        """The gradients live in one flat buffer per weight-decay group (FlatParameters): zero it in place."""
        self._flat.attach_grads()
        self._flat.zero_grad()

    def on_train_start(self) -> None:
        self._world_size = self.trainer.world_size if dist.is_available() and dist.is_initialized() else 1

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.automatic_optimization:  # one minibatch: Lightning steps the optimizer with this loss
            x, y = batch  # (B, T), (B) or (B, T)
            self._lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            loss = next_char_nll(self.model(x), y)
            self._loss_sum += loss.detach()
            self._loss_count += 1
            return loss
        xs, ys = batch  # (k, B, T), (k, B) or (k, B, T): k minibatches, one optimizer step each
        # The bare torch optimizer: Lightning's per-step hooks cost more than a step of these models.
        optimizer = self.optimizers().optimizer
        optimizer_step = unwrapped_step(optimizer)
        scheduler = self.lr_schedulers()
        model, loss_sum, clip = self.model, self._loss_sum, self.clip_val  # locals: module attributes are slow
        clip_grads = torch.nn.utils.clip_grad_value_ if self.clip_value_not_norm else torch.nn.utils.clip_grad_norm_
        params = self._flat  # all parameters and gradients, one flat tensor per weight-decay group
        params.attach_grads()
        flat_tensors, group = params.flat_tensors, optimizer.param_groups[0]
        for x, y in zip(xs, ys, strict=True):
            loss = next_char_nll(model(x), y)
            params.zero_grad()
            loss.backward()
            if self._world_size > 1:
                self._average_gradients(flat_tensors)
            if clip:
                clip_grads(flat_tensors, clip)
            lr = group["lr"]
            optimizer_step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach()
        self._loss_count += len(xs)
        self._lr = lr
        advance_counters(self.trainer, len(xs))
        self._after_steps(self.global_step)
        return loss.detach()  # the last step's loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """One-step path: Lightning's step, then the train-loss log of that step (with accumulation, Lightning
        calls this once per optimizer step)."""
        super().optimizer_step(*args, **kwargs)
        self._after_steps(self.global_step + 1)  # Lightning counts the step once this hook has returned

    def _after_steps(self, step: int) -> None:
        """The mean train loss and lr, where Lightning logs: every log_every_n_steps optimizer steps and at the
        last step. Here, before the callbacks' on_train_batch_end, so a checkpoint written there holds the
        state after this call. With log_every_n_steps=0 nothing is logged; divergence is checked every 100 steps."""
        every, max_steps = self.trainer.log_every_n_steps, self.trainer.max_steps
        last = 0 <= max_steps <= step
        if every and (step % every == 0 or last):
            self._log_train_loss(step, log=True)
        elif not every and (self._loss_count >= 100 or last):
            self._log_train_loss(step, log=False)

    def _average_gradients(self, flat_tensors: list[torch.Tensor]) -> None:
        """Every process's gradients -> their mean: one all-reduce per flat gradient (one per weight-decay group)."""
        for flat in flat_tensors:
            dist.all_reduce(flat.grad)
            flat.grad.div_(self._world_size)

    def _average_buffers(self) -> None:
        """BatchNorm's running statistics are not gradients: each process keeps its own; average them so that
        validation and the saved weights are the same on every process."""
        if self._world_size > 1:
            for buffer in self.model.buffers():
                if buffer.is_floating_point():
                    dist.all_reduce(buffer)
                    buffer.div_(self._world_size)

    def _log_train_loss(self, step: int, log: bool) -> None:
        """Mean minibatch loss since the last log (over all processes): the only host sync in the training
        loop, and where a diverged run (non-finite loss, or above divergence_factor x ln V) stops within
        log_every_n_steps steps, before anything is saved as a result."""
        mean = self.trainer.strategy.reduce(self._loss_sum / self._loss_count, reduce_op="mean").item()
        if self.stop_on_divergence and (not math.isfinite(mean) or mean > self.divergence_loss):
            raise TrainingDiverged(
                f"training diverged: mean loss {mean} over steps {step - self._loss_count + 1}-{step} at lr "
                f"{self._lr:g}; lower optimizer.lr and rerun (checkpoints/last.ckpt, if any, holds the last "
                "validated weights)"
            )
        self._loss_sum.zero_()
        self._loss_count = 0
        self.last_losses["loss"] = mean
        if log:  # straight to the loggers at the step self.log would use (as LearningRateMonitor does): self.log
            # would cost ~2 ms a call here, 6% of a 100-step call of the notebook's MLP
            for logger in self.loggers:
                logger.log_metrics({"loss/train": mean, "lr": self._lr}, step=log_step(self.trainer))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What a resumed run needs beyond weights, optimizer, scheduler and step (which Lightning saves)
        to continue bit for bit: the train loss summed since the last log, and the global RNGs."""
        checkpoint["train_loss_since_log"] = {"sum": self._loss_sum.detach().cpu().clone(), "count": self._loss_count}
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for i, state in enumerate(checkpoint.get("lr_schedulers", [])):
            if "lr_lambdas" not in state:  # the scheduler chain before LambdaLR: its step is all LambdaLR needs
                checkpoint["lr_schedulers"][i] = {"last_epoch": state["last_epoch"], "lr_lambdas": [None]}
        if "train_loss_since_log" in checkpoint:
            self._loss_sum.copy_(checkpoint["train_loss_since_log"]["sum"])
            self._loss_count = checkpoint["train_loss_since_log"]["count"]
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "python" in states:
            random.setstate(states["python"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    def on_validation_start(self) -> None:
        if not self.trainer.sanity_checking:
            self._average_buffers()

    def on_train_end(self) -> None:
        self._average_buffers()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        nll = next_char_nll(self.model(x), y, reduction="sum").double()
        self._eval_nll = self._eval_nll.to(nll.device) + nll
        self._eval_count += int(y.ne(-100).sum())

    def on_validation_epoch_end(self) -> None:
        """Exact mean NLL per character over the whole split (not a mean of chunk means); under DDP each
        process scored its own part of the split and the sums are added up. `val_loss` is for ModelCheckpoint
        and EarlyStopping, `loss/val` for the loggers; a sanity check's value is neither logged nor shown."""
        count = torch.tensor(float(self._eval_count), device=self.device)
        totals = torch.stack([self._eval_nll.to(self.device), count])
        nll, count = self.trainer.strategy.reduce(totals.double(), reduce_op="sum").tolist()
        self._eval_nll = torch.zeros((), dtype=torch.float64)
        self._eval_count = 0
        val_loss = nll / count
        self.log("val_loss", val_loss, logger=False, sync_dist=True)  # equal on every process already
        if not self.trainer.sanity_checking:
            self.log("loss/val", val_loss, sync_dist=True)
            self.last_losses["val_loss"] = val_loss
