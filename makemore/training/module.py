"""One LightningModule for every model family: loss, optimizer, schedule and logging live here."""

import math
import random
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from makemore.data.vocab import Vocabulary
from makemore.errors import TrainingDiverged


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and the embedding C, not on biases: the paper's R(theta)."""
    if not weight_decay:  # one group: each group costs a pass of the optimizer's per-step Python
        return [{"params": list(model.parameters()), "weight_decay": 0.0}]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _count_optimizer_steps(trainer: L.Trainer, n: int) -> None:
    """Record n optimizer steps taken outside LightningOptimizer.step, so trainer.global_step (which
    in manual optimization is this counter), max_steps, checkpoints and resume count them."""
    trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_by(n)


class LanguageModel(L.LightningModule):
    """Wraps a plain next-character model; all constructor arguments are plain data, so the checkpoint
    alone (weights + vocabulary + model config) rebuilds it. `data` records which file and split the
    weights were trained on (path, sha256, split, split_seed), so eval can recompute the split.

    Training takes K optimizer steps per Lightning call (a batch is K minibatches, see
    RandomMinibatches): for models this small, Lightning's per-call machinery costs more than the
    step itself. global_step, the per-step LR schedule and logging stay exact.
    """

    def __init__(
        self,
        model: dict[str, Any],
        vocab: list[str],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        log_every: int = 100,
        data: dict[str, Any] | None = None,
        divergence_factor: float = 20.0,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.vocab = Vocabulary(vocab)
        self.model = instantiate(model, vocab_size=self.vocab.size)
        self.log_every = log_every
        # A mean loss this far above the uniform model's ln(V) (3.3 nats for names.txt) is divergence,
        # not learning: the seed's N(0,1) init starts near 8 x ln(V).
        self.divergence_loss = divergence_factor * math.log(self.vocab.size)
        self.automatic_optimization = False
        self.register_buffer("_loss_sum", torch.zeros(()), persistent=False)
        self._loss_count = 0
        self._eval_nll = torch.zeros(())
        self._eval_count = 0

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = dict(self.hparams.optimizer)
        groups = param_groups(self.model, cfg.pop("weight_decay", 0.0))
        optimizer = instantiate(cfg, _partial_=True)(groups)
        if not self.hparams.scheduler:
            return {"optimizer": optimizer}
        return {"optimizer": optimizer, "lr_scheduler": instantiate(self.hparams.scheduler, _partial_=True)(optimizer)}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        xs, ys = batch  # (K, B, T), (K, B): K minibatches, one optimizer step each
        # The bare torch optimizer: Lightning's per-step hooks cost more than a step of this model.
        optimizer = self.optimizers().optimizer
        scheduler = self.lr_schedulers()
        model, loss_sum = self.model, self._loss_sum  # locals: nn.Module attribute lookups are slow
        for x, y in zip(xs, ys, strict=True):
            loss = F.cross_entropy(model(x), y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach()
        self._loss_count += len(xs)
        _count_optimizer_steps(self.trainer, len(xs))
        step = self.global_step
        if step % self.log_every == 0 or step >= self.trainer.max_steps:
            self._log_train_loss(step, optimizer.param_groups[0]["lr"])
        return loss.detach()  # the last step's loss, for callbacks such as the lr finder

    def _log_train_loss(self, step: int, lr: float) -> None:
        """Mean minibatch loss since the last log: the only host sync in the training loop, and where a
        diverged run (non-finite loss, or above divergence_factor x ln V) stops within log_every steps,
        before anything is saved as a result."""
        mean = (self._loss_sum / self._loss_count).item()
        if not math.isfinite(mean) or mean > self.divergence_loss:
            raise TrainingDiverged(
                f"training diverged: mean loss {mean} over steps {step - self._loss_count + 1}-{step} at lr {lr:g}; "
                "lower optimizer.lr and rerun (checkpoints/last.ckpt, if any, holds the last validated weights)"
            )
        self._loss_sum.zero_()
        self._loss_count = 0
        self.log("loss", mean, prog_bar=True, logger=False)
        for logger in self.loggers:  # step axis = optimizer steps, not Lightning calls
            logger.log_metrics({"train_loss": mean, "lr": lr}, step=step)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What a resumed run needs beyond weights, optimizer, scheduler and step (which Lightning saves)
        to continue bit for bit: the train loss summed since the last log, and the global RNGs."""
        checkpoint["train_loss_since_log"] = {"sum": self._loss_sum.detach().cpu().clone(), "count": self._loss_count}
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
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

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._accumulate_nll(batch)

    def on_validation_epoch_end(self) -> None:
        val_loss = self._pop_mean_nll()
        self.log("val_loss", val_loss, prog_bar=True, logger=False)
        if not self.trainer.sanity_checking:
            for logger in self.loggers:
                logger.log_metrics({"val_loss": val_loss}, step=self.global_step)

    def _accumulate_nll(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        self._eval_nll = self._eval_nll.to(self.device) + F.cross_entropy(self.model(x), y, reduction="sum")
        self._eval_count += len(y)

    def _pop_mean_nll(self) -> float:
        """Exact mean NLL per character over the whole split (not a mean of chunk means)."""
        mean = (self._eval_nll / self._eval_count).item()
        self._eval_nll = torch.zeros(())
        self._eval_count = 0
        return mean
