"""Batched generation: one forward pass per character position for all unfinished items at once."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from makemore.data.contexts import recorded_splits
from makemore.data.vocab import BOUNDARY_ID, Vocabulary
from makemore.errors import MakemoreError
from makemore.evaluation import mean_of_probabilities


def sample_next(probs: Tensor, generator: torch.Generator) -> Tensor:
    """One id per row of probs (N, V) by inverting its CDF: torch.multinomial(probs, 1)'s distribution, faster."""
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    ix = (probs.cumsum(dim=-1) < u).sum(dim=-1)
    return ix.clamp_(max=probs.shape[-1] - 1)  # u above a cumsum rounded below 1


def next_char_logits(models: Sequence[nn.Module], history: Tensor) -> Tensor:
    """history (N, t) after the leading boundary -> next logits (N, V); an ensemble's: log of the mean probability."""
    logits = []
    for model in models:
        if model.view == "sequence":
            logits.append(model(history[:, -model.block_size :])[:, -1])
        else:
            context = F.pad(history, (max(0, model.block_size - history.shape[1]), 0), value=BOUNDARY_ID)
            logits.append(model(context[:, -model.block_size :]))
    return logits[0] if len(logits) == 1 else mean_of_probabilities(torch.stack(logits).log_softmax(dim=-1))


@torch.no_grad()
def generate(
    model: nn.Module | Sequence[nn.Module],
    vocab: Vocabulary,
    num_samples: int,
    max_len: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    prefix: str = "",
) -> list[str]:
    """`num_samples` items from `prefix` to the boundary or max_len new characters (temperature=0: greedy decoding)."""
    models = [model] if isinstance(model, nn.Module) else list(model)
    if unknown := vocab.unknown_chars([prefix]):
        raise MakemoreError(f"prefix {prefix!r} has characters the model does not know: {''.join(unknown)!r}")
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    device = next(models[0].parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    block_size = max(m.block_size for m in models)
    history = torch.tensor([[BOUNDARY_ID, *vocab.encode(prefix)]], device=device).repeat(num_samples, 1)  # (n, t)
    out = torch.full((num_samples, max_len), BOUNDARY_ID, dtype=torch.long, device=device)
    active = torch.arange(num_samples, device=device)  # the rows still generating
    for t in range(max_len):
        logits = next_char_logits(models, history)  # (n, V)
        if temperature == 0:
            ix = logits.argmax(dim=-1)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            ix = sample_next(torch.softmax(logits, dim=-1), generator)  # (n,)
        out[active, t] = ix
        going = ix != BOUNDARY_ID
        active, history, ix = active[going], history[going], ix[going]
        if len(active) == 0:
            break
        history = torch.cat([history[:, -block_size:], ix.unsqueeze(1)], dim=1)
    for m, mode in zip(models, was_training, strict=True):
        m.train(mode)
    return [prefix + vocab.decode(row) for row in out.tolist()]


def training_items(record: dict | None) -> set[str]:
    """The training split of the data a checkpoint records, or a MakemoreError saying why not."""
    try:
        return set(recorded_splits(record)[1]["train"])
    except (OSError, MakemoreError):
        path = (record or {}).get("path")
        raise MakemoreError(f"the training data file {path} is gone or has changed since training") from None
