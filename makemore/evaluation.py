"""Exact full-split losses: mean negative log-likelihood per character, in nats (and bits, perplexity)."""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from makemore.data.contexts import recorded_splits
from makemore.data.views import Examples, build_examples
from makemore.data.vocab import Vocabulary
from makemore.errors import DataError


def next_char_nll(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of every scored target: logits (B, V) with targets (B), or (B, T, V) with (B, T) where
    padding targets are torch's ignore_index (-100) and count for nothing."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction=reduction)


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


def evaluate(
    model: nn.Module,
    vocab: Vocabulary,
    record: dict | None,
    data_path: str | Path | None = None,
    chunk_size: int = 65536,
) -> dict:
    """Train/val/test loss (nats/char), bits per character and perplexity of a trained model.

    The split is recomputed from the data `record` of its checkpoint, or from `data_path` (another
    file whose characters the model knows) with the same fractions and seed.
    """
    path, splits = recorded_splits(record, data_path)
    check_known_chars(vocab, splits, path)
    results = {}
    for name, split in splits.items():
        examples = build_examples(model.view, split, vocab, model.block_size)
        results[name] = loss_record(mean_nll(model, examples, chunk_size), examples.num_targets)
    return {"data": str(path), **results}


def check_known_chars(vocab: Vocabulary, splits: dict[str, list[str]], path: Path) -> None:
    unknown = vocab.unknown_chars(item for split in splits.values() for item in split)
    if unknown:
        shown = "".join(unknown[:20])
        raise DataError(
            f"{path} has {len(unknown)} characters the model has never seen: {shown!r}; "
            "evaluate on a file with the training vocabulary"
        )


def loss_record(loss: float, targets: int) -> dict[str, float | int]:
    """A split's mean NLL in nats/char, in bits/char and as perplexity, over `targets` (every character and the
    end of every item)."""
    return {"loss": loss, "bits_per_char": loss / math.log(2), "perplexity": math.exp(loss), "targets": targets}
