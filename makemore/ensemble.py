"""Ensembles: several trained models as one, whose next-character distribution is the mean of theirs.

p_ens(c | prefix) = (1/M) sum_m p_m(c | prefix): each member conditions on the same item prefix in its own view
(a context model on the last block_size characters, a sequence model on its window of the item), so members may
be different families. Scored over the same targets as each member alone (every character and the end of every
item of a split, in the same order), the ensemble's loss is directly comparable with theirs.
"""

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from makemore.data.contexts import SPLIT_IDENTITY, recorded_splits
from makemore.data.views import Examples, build_examples
from makemore.errors import MakemoreError
from makemore.evaluation import check_known_chars, loss_record


def check_members(paths: list[Path], modules: list[Any]) -> None:
    """Members must share the vocabulary (the same ids mean the same characters) and the data and split they were
    trained on (the same held-out items): else one line naming the first member that differs."""
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


@torch.no_grad()
def target_log_probs(
    model: nn.Module, examples: Examples, chunk_size: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(target | its prefix) of every scored target of a split, in stream order (item by item, character by
    character, in either view), as float64, and the target ids."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    step = max(1, chunk_size // (examples.block_size if model.view == "sequence" else 1))
    log_probs, targets = [], []
    for start in range(0, len(examples), step):
        x, y = examples[torch.arange(start, min(start + step, len(examples)))]
        logits = model(x.to(device)).flatten(0, -2)  # (N, V): one row per position, scored or padding
        y = y.to(device).flatten()
        scored = y != -100
        rows = torch.log_softmax(logits[scored].double(), dim=-1)  # (n, V)
        log_probs.append(rows.gather(1, y[scored].unsqueeze(1)).squeeze(1))
        targets.append(y[scored])
    model.train(was_training)
    return torch.cat(log_probs), torch.cat(targets)


def mean_of_probabilities(log_probs: torch.Tensor) -> torch.Tensor:
    """(M, ...) members' log-probabilities -> the log of their mean probability, (...)."""
    return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])


def evaluate_ensemble(
    modules: list[Any], data_path: str | Path | None = None, chunk_size: int = 65536
) -> dict[str, Any]:
    """Each member's and the ensemble's train/val/test loss (nats/char, bits, perplexity) over the same targets."""
    first = modules[0]
    path, splits = recorded_splits(first.hparams.data, data_path)
    check_known_chars(first.vocab, splits, path)
    members: list[dict[str, Any]] = [{} for _ in modules]
    ensemble: dict[str, Any] = {}
    for name, split in splits.items():
        per_member, reference = [], None
        for i, module in enumerate(modules):
            model = module.model
            log_probs, targets = target_log_probs(
                model, build_examples(model.view, split, first.vocab, model.block_size), chunk_size
            )
            if reference is None:
                reference = targets
            elif not torch.equal(targets, reference):  # a guard: the views must agree on what is scored
                raise MakemoreError(f"member {i + 1} scores other targets of the {name} split than member 1")
            members[i][name] = loss_record(-log_probs.mean().item(), len(targets))
            per_member.append(log_probs)
        ensemble[name] = loss_record(-mean_of_probabilities(torch.stack(per_member)).mean().item(), len(reference))
    return {"data": str(path), "members": members, "ensemble": ensemble}


def ensemble_row(members: list[dict[str, Any]], scores: dict[str, Any], data: dict[str, Any] | None) -> dict[str, Any]:
    """The ensemble as a run of compare.py's table: its losses, the members' parameters, steps and training time
    added up (a member's time read from its run's metrics.json, if there), and the data record."""
    times = []
    for member in members:
        metrics = Path(member["ckpt"]).parent.parent / "metrics.json"
        times.append(json.loads(metrics.read_text()).get("train_time_s") if metrics.is_file() else None)
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
