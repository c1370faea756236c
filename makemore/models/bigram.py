"""The bigram model: a table of next-character logits indexed by the current character.

The baseline of Karpathy's makemore (lecture 1, "The spelled-out intro to language modeling"): training
it by gradient descent recovers the smoothed count table.
"""

from typing import ClassVar

import torch
from torch import nn


class Bigram(nn.Module):
    """logits = table[last id]; the rest of the context is ignored, so block_size only sets how much is fed.

    The table starts at zeros, i.e. the uniform distribution, loss ln(V). num_params = V*V.
    """

    view: ClassVar[str] = "context"

    def __init__(self, vocab_size: int, block_size: int = 1):
        super().__init__()
        self.block_size = block_size
        self.logits = nn.Parameter(torch.zeros(vocab_size, vocab_size))  # (V, V): row = current, col = next

    def char_embedding(self) -> torch.Tensor | None:
        return None  # a row of the table is a distribution, not a feature vector

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # idx: (B, block_size) character ids -> logits (B, V)
        return self.logits[idx[:, -1]]
