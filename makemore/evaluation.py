"""Exact full-split losses of a model or an ensemble (of any families): p(c | prefix) = (1/M) sum_m p_m(c | prefix)."""

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from makemore.data.contexts import SPLIT_IDENTITY, recorded_splits
from makemore.data.sequences import BUILD_EXAMPLES, IGNORE_INDEX, Examples
from makemore.errors import DataError, MakemoreError


def next_char_nll(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits (B, V) with targets (B), or (B, T, V) with (B, T); IGNORE_INDEX targets count nothing."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction=reduction)


@torch.no_grad()
def target_log_probs(model: nn.Module, examples: Examples, chunk_size: int = 65536) -> tuple[Tensor, Tensor]:
    """log p(target | prefix) of every scored target (float64, stream order) and the targets, `chunk_size` at once."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    step = max(1, chunk_size // (examples.block_size if model.view == "sequence" else 1))
    log_probs, targets = [], []
    for start in range(0, len(examples), step):
        x, y = examples[start : start + step]
        y = y.to(device).flatten()
        scored = y != IGNORE_INDEX
        logits = model(x.to(device)).flatten(0, -2)[scored].double()  # (n, V): the scored positions' rows
        log_probs.append(logits.log_softmax(dim=-1).gather(1, y[scored, None]).squeeze(1))
        targets.append(y[scored])
    model.train(was_training)
    return torch.cat(log_probs), torch.cat(targets)


def mean_nll(model: nn.Module, examples: Examples, chunk_size: int = 65536) -> float:
    """Mean NLL per target over the whole split."""
    return -target_log_probs(model, examples, chunk_size)[0].mean().item()


def mean_of_probabilities(log_probs: Tensor) -> Tensor:
    """(M, ...) members' log-probabilities -> the log of their mean probability, (...)."""
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


def loss_record(log_probs: Tensor) -> dict[str, float | int]:
    """A split's mean NLL from its targets' log-probabilities, in nats/char, bits/char and as perplexity."""
    loss = -log_probs.mean().item()
    return {"loss": loss, "bits_per_char": loss / math.log(2), "perplexity": math.exp(loss), "targets": len(log_probs)}


def evaluate(modules: Sequence[Any], data_path: str | Path | None = None, chunk_size: int = 65536) -> dict:
    """Each member's and the ensemble's train/val/test loss_record over the same targets (one module: an ensemble of
    one), on the data the first records or `data_path` split as recorded."""
    vocab, models = modules[0].vocab, [m.model for m in modules]
    path, splits = recorded_splits(modules[0].hparams.data, data_path)
    if unknown := vocab.unknown_chars(item for split in splits.values() for item in split):
        raise DataError(
            f"{path} has {len(unknown)} characters the model has never seen: {''.join(unknown[:20])!r}; "
            "evaluate on a file with the training vocabulary"
        )
    scores = {}
    for name, items in splits.items():
        scored = [target_log_probs(m, BUILD_EXAMPLES[m.view](items, vocab, m.block_size), chunk_size) for m in models]
        for i, (_, targets) in enumerate(scored[1:], start=2):  # a guard: the views must agree on what is scored
            if not torch.equal(targets, scored[0][1]):
                raise MakemoreError(f"member {i} scores other targets of the {name} split than member 1")
        scores[name] = torch.stack([log_probs for log_probs, _ in scored])  # (M, N)
    members = [{name: loss_record(log_probs[i]) for name, log_probs in scores.items()} for i in range(len(models))]
    ensemble = {name: loss_record(mean_of_probabilities(log_probs)) for name, log_probs in scores.items()}
    return {"data": str(path), "members": members, "ensemble": ensemble}


def check_members(paths: list[Path], modules: list[Any]) -> None:
    """Refuse members that differ from the first in vocabulary or data and split."""
    first, first_data = modules[0], modules[0].hparams.data or {}
    for path, module in zip(paths[1:], modules[1:], strict=True):
        data = module.hparams.data or {}
        if module.vocab.chars != first.vocab.chars:
            what = f"another vocabulary ({module.vocab.size} characters, {first.vocab.size} in {paths[0]})"
        elif any(data.get(k) != first_data.get(k) for k in SPLIT_IDENTITY):
            what = f"other data ({data.get('path')}, {first_data.get('path')} for {paths[0]})"
        else:
            continue
        raise MakemoreError(
            f"ensemble members must be trained on the same data and vocabulary: {path} has {what}; "
            "pass checkpoints of runs on one data file"
        )


def ensemble_row(members: list[dict[str, Any]], scores: dict[str, Any], data: dict[str, Any] | None) -> dict[str, Any]:
    """The ensemble as a row of compare.py's table: its losses, the members' parameters, steps and time added up."""
    runs = [Path(m["ckpt"]).parent.parent / "metrics.json" for m in members]
    times = [json.loads(run.read_text()).get("train_time_s") if run.is_file() else None for run in runs]
    kinds = sorted({m["model"] for m in members})
    return {
        "name": f"ensemble of {len(members)}",
        "model": "+".join(f"{k} x{sum(m['model'] == k for m in members)}" for k in kinds),
        "num_params": sum(m["num_params"] for m in members),
        "steps": sum(m["step"] for m in members),
        "train_time_s": None if None in times else round(sum(times), 2),
        **{f"{split}_loss": scores[split]["loss"] for split in scores},
        "split_sizes": {split: scores[split]["targets"] for split in scores},
        "data": data and {"path": data["path"], "sha256": data["sha256"]},
    }
