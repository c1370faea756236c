"""Exact full-split losses: mean negative log-likelihood per character, in nats (and bits, perplexity)."""

import math
from pathlib import Path

import torch
from torch import nn

from makemore.data.views import Examples, build_examples
from makemore.errors import DataError
from makemore.training.checkpoint import recorded_splits
from makemore.training.module import LanguageModel, next_char_nll


@torch.no_grad()
def mean_nll(model: nn.Module, examples: Examples, chunk_size: int = 65536) -> float:
    """Mean NLL per target over the whole split, each target once, in chunks of at most `chunk_size` targets'
    logits so memory stays bounded on large data (a sequence window holds block_size of them)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    step = max(1, chunk_size // (examples.block_size if model.view == "sequence" else 1))
    total = 0.0
    for start in range(0, len(examples), step):
        x, y = examples[torch.arange(start, min(start + step, len(examples)))]
        total += next_char_nll(model(x.to(device)), y.to(device), reduction="sum").double().item()
    model.train(was_training)
    return total / examples.num_targets


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
        examples = build_examples(module.model.view, split, module.vocab, module.model.block_size)
        loss = mean_nll(module.model, examples, chunk_size)
        results[name] = {
            "loss": loss,
            "bits_per_char": loss / math.log(2),
            "perplexity": math.exp(loss),
            "targets": examples.num_targets,  # every character and the end of every item
        }
    return {"data": str(path), **results}
