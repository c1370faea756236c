"""Batched generation: one forward pass per character position for all samples at once."""

import torch
from torch import nn

from makemore.vocab import BOUNDARY_ID, Vocabulary


@torch.no_grad()
def generate(
    model: nn.Module,
    vocab: Vocabulary,
    num_samples: int,
    block_size: int,
    max_len: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Sample `num_samples` items, each starting from an all-boundary context, until the boundary id.

    Finished rows keep being computed (masking is cheaper than re-packing the batch) but their
    output is ignored. The same seed gives the same items.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    context = torch.full((num_samples, block_size), BOUNDARY_ID, dtype=torch.long, device=device)
    out = torch.full((num_samples, max_len), BOUNDARY_ID, dtype=torch.long, device=device)
    done = torch.zeros(num_samples, dtype=torch.bool, device=device)
    for t in range(max_len):
        logits = model(context) / temperature  # (N, V)
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        ix = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)  # (N,)
        ix = ix.masked_fill(done, BOUNDARY_ID)
        out[:, t] = ix
        done |= ix == BOUNDARY_ID
        if done.all():
            break
        context = torch.cat([context[:, 1:], ix.unsqueeze(1)], dim=1)
    model.train(was_training)
    return [vocab.decode(row) for row in out.tolist()]
