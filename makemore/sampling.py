"""Batched generation: one forward pass per character position for all unfinished samples at once."""

import torch
from torch import nn

from makemore.data.contexts import recorded_splits
from makemore.data.vocab import BOUNDARY_ID, Vocabulary
from makemore.errors import MakemoreError


def sample_next(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One id per row of probs (N, V), by inverting each row's CDF with a uniform draw.

    Same distribution as torch.multinomial(probs, 1), 10x faster on CPU for many short rows (measured
    2026-12-02, 10,000 rows of 27, one thread, 7 interleaved pairs: 740 vs 7,470 us per draw).
    """
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    ix = (probs.cumsum(dim=-1) < u).sum(dim=-1)
    return ix.clamp_(max=probs.shape[-1] - 1)  # u above a cumsum rounded below 1


@torch.no_grad()
def generate(
    model: nn.Module,
    vocab: Vocabulary,
    num_samples: int,
    max_len: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    prefix: str = "",
) -> list[str]:
    """Sample `num_samples` items that start with `prefix`, until the boundary id or max_len new characters.
    temperature=0 is greedy decoding (the most likely character every time, so every item is the same).

    A context model sees the last block_size ids (boundary-padded, as in training); a sequence model sees
    the item so far from its leading boundary, at most its last block_size ids. Rows that have emitted the
    boundary drop out of the batch, so the cost follows the total length of the items rather than
    num_samples x the longest. The same seed gives the same items.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    unknown = vocab.unknown_chars([prefix])
    if unknown:
        raise MakemoreError(f"prefix {prefix!r} has characters the model does not know: {''.join(unknown)!r}")
    block_size, sequence = model.block_size, model.view == "sequence"
    start = [BOUNDARY_ID] * (1 if sequence else block_size) + vocab.encode(prefix)
    history = torch.tensor([start], device=device).repeat(num_samples, 1)  # (n_active, t)
    out = torch.full((num_samples, max_len), BOUNDARY_ID, dtype=torch.long, device=device)
    active = torch.arange(num_samples, device=device)  # rows still generating
    for t in range(max_len):
        logits = model(history[:, -block_size:])  # (n_active, V) or (n_active, t, V)
        logits = logits[:, -1] if sequence else logits
        if temperature == 0:
            ix = logits.argmax(dim=-1)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            ix = sample_next(torch.softmax(logits, dim=-1), generator)  # (n_active,)
        out[active, t] = ix
        going = ix != BOUNDARY_ID
        active, history, ix = active[going], history[going], ix[going]
        if len(active) == 0:
            break
        history = torch.cat([history[:, -block_size:], ix.unsqueeze(1)], dim=1)
    model.train(was_training)
    return [prefix + vocab.decode(row) for row in out.tolist()]


def training_items(record: dict | None) -> set[str]:
    """The training split of the data a checkpoint records; a MakemoreError says why when that file is gone,
    unreadable or changed since training."""
    try:
        return set(recorded_splits(record)[1]["train"])
    except (OSError, MakemoreError):
        raise MakemoreError(
            f"the training data file {(record or {}).get('path')} is gone or has changed since training"
        ) from None
