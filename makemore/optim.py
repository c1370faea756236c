"""Optimizers (`sgd`, `adamw`, `muon`) and per-step lr schedules (`constant`, `step`, `cosine`; optional warmup)."""

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

from makemore.errors import ConfigError
from makemore.models import hidden_matrices

Momentum = Annotated[float, Field(ge=0, lt=1, description="a number in [0, 1)")]  # Muon's (schema reads it)


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon (Jordan et al. 2024) for the groups marked "muon" (hidden 2-D weights), AdamW for the rest, as one
    optimizer: one LR schedule, one checkpoint entry. Muon's lr matches AdamW's update RMS, so one `lr` serves both."""

    def __init__(self, params: list[dict[str, Any]], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, momentum: Momentum = 0.95,
                 nesterov: bool = True, ns_steps: int = 5, fused: bool | None = None):  # fmt: skip
        muon = {"momentum": momentum, "nesterov": nesterov, "ns_steps": ns_steps, "adjust_lr_fn": "match_rms_adamw"}
        shared = {"lr": lr, "weight_decay": weight_decay}  # each group sets its own weight_decay (muon_param_groups)
        self.muon = torch.optim.Muon([g for g in params if g.get("muon")], **shared, **muon)
        adamw_groups = [group for group in params if not group.get("muon")]
        self.adamw = torch.optim.AdamW(adamw_groups, **shared, betas=betas, eps=eps, amsgrad=amsgrad, fused=fused)
        # the inner optimizers' own group dicts: a schedule setting group["lr"] here sets it for them
        super().__init__(self.muon.param_groups + self.adamw.param_groups, {"lr": lr})

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self.muon.step(closure)  # Lightning's automatic optimization: forward and backward in the closure
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        # loading gives the inner optimizers new group dicts: share them again, or the schedule's lr goes nowhere
        self.param_groups = self.muon.param_groups + self.adamw.param_groups


OPTIMIZERS: dict[str, type] = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW, "muon": MuonWithAdamW}


def param_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and embeddings, not on biases and norm gains: the paper's R(theta)."""
    params = list(params)
    if not weight_decay:  # one group: each group costs a pass of the optimizer's per-step Python
        return [{"params": params, "weight_decay": 0.0}]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
    return [group for group in groups if group["params"]]  # the bigram has no biases


def muon_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Muon's group (the hidden matrices: Muon orthogonalizes each one), then AdamW's groups."""
    if not (muon := hidden_matrices(model)):
        raise ConfigError(f"optimizer=muon is for hidden layers' weight matrices, and {type(model).__name__} has none; "
                          "use optimizer=adamw")  # fmt: skip
    rest = [p for p in model.parameters() if all(p is not m for m in muon)]
    return [{"params": muon, "weight_decay": weight_decay, "muon": True}, *param_groups(rest, weight_decay)]


def unwrapped_step(optimizer: torch.optim.Optimizer) -> Callable[[], Any]:
    """`optimizer.step` minus torch's per-call wrapper (hooks, profiler: as slow as the MLP's SGD step); same update."""
    wrapped = type(optimizer).step
    hooks = optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
    if hooks or _global_optimizer_pre_hooks or _global_optimizer_post_hooks or not hasattr(wrapped, "__wrapped__"):
        return optimizer.step
    optimizer._opt_called = True  # what the scheduler's counter would record: the optimizer steps before it
    return wrapped.__wrapped__.__get__(optimizer)


def build_optimizer(config: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer `config` names, over its parameter groups (torch's constructor checks the settings)."""
    cls, settings = OPTIMIZERS[config["name"]], {k: v for k, v in config.items() if k != "name"}
    if "betas" in settings:
        settings["betas"] = tuple(settings["betas"])
    decay = settings.setdefault("weight_decay", 0.0)
    groups = muon_param_groups(model, decay) if cls is MuonWithAdamW else param_groups(model.parameters(), decay)
    return cls(groups, **settings)


def lr_factor(config: Mapping[str, Any], base_lr: float) -> Callable[[int], float]:
    """The schedule `config` names: optimizer step -> the factor on base_lr."""
    name, warmup = config["name"], config.get("warmup_steps", 0)
    milestones = sorted(config.get("milestones", []))
    gamma, total, min_lr = config.get("gamma", 0.1), config.get("total_steps"), config.get("min_lr", 0.0)

    def factor(step: int) -> float:
        if step < warmup:  # linear from 1 / warmup_steps at step 0 to 1 at warmup_steps
            return 1 / warmup + (1 - 1 / warmup) * step / warmup
        if name == "step":  # the milestones count from step 0
            return gamma ** bisect.bisect_right(milestones, step)
        if name == "cosine":
            cosine = (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2
            return (min_lr + (base_lr - min_lr) * cosine) / base_lr
        return 1.0

    return factor


def resolve_schedule(config: Mapping[str, Any] | None, run_steps: float) -> dict[str, Any]:
    """Null lengths made the run's (`run_steps`): cosine's total_steps, and the step decay's milestone at decay_at."""
    config = dict(config or {"name": "constant"})
    derived = [key for key in ("total_steps", "milestones") if key in config and config[key] is None]
    if derived and not math.isfinite(run_steps):
        raise ConfigError(f"scheduler={config['name']} needs the run's length: set trainer.max_steps or max_epochs")
    if "total_steps" in derived:
        config["total_steps"] = int(run_steps)
    if "milestones" in derived:
        config["milestones"] = [int(config["decay_at"] * run_steps)]
    warmup, first = config.get("warmup_steps", 0), min(config.get("milestones") or [config.get("total_steps") or 1])
    if derived and warmup and warmup >= first:
        raise ConfigError(f"scheduler.warmup_steps={warmup} must end before the run's schedule does (step {first})")
    return config


def build_scheduler(config: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> LambdaLR | None:
    """The schedule as one LambdaLR (its state is the step, last_epoch); None for a constant lr without warmup."""
    if config["name"] == "constant" and not config.get("warmup_steps", 0):
        return None
    base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    return LambdaLR(optimizer, [lr_factor(config, base_lr) for base_lr in base_lrs])
