"""Exact full-split losses: mean negative log-likelihood per character, in nats."""

import torch
import torch.nn.functional as F
from torch import nn

from makemore.contexts import ContextSet


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
