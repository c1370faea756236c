"""Optimizers and learning-rate schedules, built by name from plain values (checked by makemore.schema).

Optimizers: `sgd` (the notebook's), `adamw`, and `muon` (Muon for the hidden layers' matrices, AdamW for the
rest). Schedules, stepped once per optimizer step: `constant`, `step`
(x gamma at each milestone, the notebook's decay) and `cosine` (to min_lr at total_steps), each after an optional
linear warmup of warmup_steps (from lr / warmup_steps up to lr).
"""

import bisect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

from makemore.models import hidden_matrices


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon (Jordan et al. 2024: momentum, then the update orthogonalized by Newton-Schulz iterations) for the
    param groups marked "muon" (the hidden layers' 2-D weights), AdamW for the others (embeddings, the output
    layer, biases and gains), as one optimizer, so one LR schedule, one checkpoint entry and Lightning's one-optimizer
    loop serve both. Muon's lr is matched to AdamW's update RMS (torch's adjust_lr_fn="match_rms_adamw"), so one
    `lr` means the same for both.
    """

    def __init__(
        self,
        params: list[dict[str, Any]],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        amsgrad: bool = False,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        fused: bool | None = None,
    ):
        muon_groups = [group for group in params if group.get("muon")]
        adamw_groups = [group for group in params if not group.get("muon")]
        self.muon = torch.optim.Muon(
            muon_groups, lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, adjust_lr_fn="match_rms_adamw"
        )
        self.adamw = torch.optim.AdamW(adamw_groups, lr=lr, betas=betas, eps=eps, amsgrad=amsgrad, fused=fused)
        # the inner optimizers' own group dicts: a schedule setting group["lr"] here sets it for them
        super().__init__(self.muon.param_groups + self.adamw.param_groups, {"lr": lr})

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:  # Lightning's automatic optimization: forward and backward happen in the closure
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adamw": torch.optim.AdamW,
    "muon": MuonWithAdamW,
}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and embeddings, not on biases and norm gains: the paper's R(theta)."""
    if not weight_decay:  # one group: each group costs a pass of the optimizer's per-step Python
        return [{"params": list(model.parameters()), "weight_decay": 0.0}]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]  # the bigram has no biases


def muon_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Muon's group (the hidden matrices, kept in shape: Muon orthogonalizes each one), then AdamW's groups."""
    muon = hidden_matrices(model)
    if not muon:
        raise ValueError(f"optimizer=muon needs hidden layers; {type(model).__name__} has none (use optimizer=adamw)")
    ids = {id(p) for p in muon}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [
        {"params": muon, "weight_decay": weight_decay, "muon": True, "keep_shapes": True},
        {"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


class FlatParameters:
    """The model's parameters as views into one flat tensor per weight-decay group, and their gradients as
    views into one flat gradient per group, so the optimizer steps one tensor per group: its per-tensor
    Python costs more than the arithmetic for models this small. Measured 2026-12-02 against the plain
    parameter groups (in-process A/B, interleaved, same losses) on a noisy 2-core machine, NOT settled: the
    optimizer step alone saves 411 us of a 4-layer Transformer's ~13 ms step (5.6-10.9% of a whole step
    timed outside Lightning, -5.7% in whole runs), 23 us for the GRU, 10 us for the notebook's MLP; a first
    GRU figure of -20% did not repeat (+5.2%, -2.7%). To be re-measured on a quiet machine, and removed
    if it stays under 5%. The update is the same elementwise arithmetic. Backward accumulates into the gradient
    views in place, as into DDP's gradient buckets: zero them with zero_grad(), never set them to None.
    """

    def __init__(self, groups: list[dict[str, Any]]):
        self.groups: list[dict[str, Any]] = []
        self.flat_tensors: list[torch.Tensor] = []
        self._grad_views: list[tuple[nn.Parameter, torch.Tensor]] = []
        for group in groups:
            params = [p for p in group["params"] if p.numel()]
            if group.get("keep_shapes"):  # Muon's matrices: each its own tensor, with its own gradient
                self._grad_views += [(p, torch.zeros_like(p)) for p in params]
                self.flat_tensors += params
                self.groups.append({k: v for k, v in group.items() if k != "keep_shapes"} | {"params": params})
                continue
            flat = torch.cat([p.detach().flatten() for p in params]).requires_grad_()
            flat.grad = torch.zeros_like(flat)
            offset = 0
            for p in params:
                n = p.numel()
                p.data = flat.data[offset : offset + n].view_as(p)
                self._grad_views.append((p, flat.grad[offset : offset + n].view_as(p)))
                offset += n
            self.groups.append({**group, "params": [flat]})
            self.flat_tensors.append(flat)
        self.attach_grads()

    def attach_grads(self) -> None:
        """Point every parameter's .grad at its view again (Lightning sets them to None before training)."""
        for p, grad in self._grad_views:
            p.grad = grad

    def zero_grad(self) -> None:
        for flat in self.flat_tensors:
            flat.grad.zero_()


def unwrapped_step(optimizer: torch.optim.Optimizer) -> Callable[[], Any]:
    """`optimizer.step` without the layers torch puts around it for every call: a profiler scope with hook
    dispatch, and the LR scheduler's call counter (together ~20 us: as long as an SGD step of the notebook's MLP).
    Measured 2026-12-02 against optimizer.step (in-process A/B, 6 interleaved pairs): the notebook's MLP 426 vs
    489 us/step (-13%), GRU 3.85 vs 4.50 ms (-14%). The update is the same; with step hooks registered, the
    wrapped step is kept so that they run."""
    wrapped = type(optimizer).step
    hooks = optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks
    if hooks or _global_optimizer_pre_hooks or _global_optimizer_post_hooks or not hasattr(wrapped, "__wrapped__"):
        return optimizer.step
    optimizer._opt_called = True  # what the scheduler's counter would record: the optimizer steps before it
    return wrapped.__wrapped__.__get__(optimizer)


def build_optimizer(config: Mapping[str, Any], model: nn.Module) -> tuple[torch.optim.Optimizer, FlatParameters]:
    """The optimizer `config` names, over the model's parameters flattened into one tensor per weight-decay
    group (see FlatParameters, which is returned too: it zeroes the gradients)."""
    cls = OPTIMIZERS[config["name"]]  # config checked by makemore.schema.check_optimizer
    settings = {k: v for k, v in config.items() if k not in ("name", "weight_decay")}
    if "betas" in settings:
        settings["betas"] = tuple(settings["betas"])
    grouping = muon_param_groups if cls is MuonWithAdamW else param_groups
    flat = FlatParameters(grouping(model, config.get("weight_decay", 0.0)))
    return cls(flat.groups, **settings), flat


def lr_factor(config: Mapping[str, Any], base_lr: float) -> Callable[[int], float]:
    """The schedule `config` names as a function of the optimizer step: the factor on base_lr at that step."""
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


def build_scheduler(config: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer) -> LambdaLR | None:
    """The schedule as one LambdaLR (its state is the step, last_epoch); None for a constant lr without warmup."""
    config = config or {"name": "constant"}
    if config["name"] == "constant" and not config.get("warmup_steps", 0):
        return None
    base_lrs = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    return LambdaLR(optimizer, [lr_factor(config, base_lr) for base_lr in base_lrs])
