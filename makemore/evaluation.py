"""Exact full-split losses: mean negative log-likelihood per character, in nats (and bits, perplexity)."""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from makemore.data.contexts import ContextSet, build_contexts
from makemore.errors import DataError
from makemore.training.checkpoint import recorded_splits
from makemore.training.module import LanguageModel


@torch.no_grad()
def mean_nll(model: nn.Module, contexts: ContextSet, chunk_size: int = 65536) -> float:
    """Mean NLL over every example of the split, in chunks so memory stays bounded on large data."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(contexts), chunk_size):
        x, y = contexts[torch.arange(start, min(start + chunk_size, len(contexts)))]
        total += F.cross_entropy(model(x.to(device)), y.to(device), reduction="sum").double().item()
    model.train(was_training)
    return total / len(contexts)


def evaluate(module: LanguageModel, data_path: str | Path | None = None, chunk_size: int = 65536) -> dict:
    """Train/val/test loss (nats/char), bits per character and perplexity of a trained module.

    The split is recomputed from the data recorded in the checkpoint, or from `data_path` (another
    file whose characters the model knows) with the same fractions and seed.
    """
    path, splits = recorded_splits(module, data_path)
    unknown = module.vocab.unknown_chars(item for split in splits.values() for item in split)
    if unknown:
        shown = "".join(unknown[:20])
        raise DataError(
            f"{path} has {len(unknown)} characters the model has never seen: {shown!r}; "
            "evaluate on a file with the training vocabulary"
        )
    results = {}
    for name, split in splits.items():
        loss = mean_nll(module.model, build_contexts(split, module.vocab, module.model.block_size), chunk_size)
        results[name] = {
            "loss": loss,
            "bits_per_char": loss / math.log(2),
            "perplexity": math.exp(loss),
            "examples": sum(len(item) + 1 for item in split),
        }
    return {"data": str(path), **results}
