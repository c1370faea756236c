"""The bigram model, the baseline of Karpathy's makemore (lecture 1)."""

from typing import ClassVar

import torch
from torch import nn


class Bigram(nn.Module):
    """A (V, V) table of next-character logits indexed by the last id, from zeros (uniform); it learns the counts."""

    view: ClassVar[str] = "context"

    def __init__(self, vocab_size: int, block_size: int = 1):
        super().__init__()
        self.block_size = block_size
        self.logits = nn.Parameter(torch.zeros(vocab_size, vocab_size))  # (V, V): row = current, col = next

    def char_embedding(self) -> torch.Tensor | None:
        return None  # a row of the table is a distribution, not a feature vector

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits[idx[:, -1]]
