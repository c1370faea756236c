"""Recurrent language models on characters: the Elman RNN (Elman 1990), the GRU (Cho et al. 2014) and the
LSTM (Hochreiter & Schmidhuber 1997), as in Karpathy's makemore, run with torch's fused nn.RNN/GRU/LSTM.
"""

from typing import ClassVar

import torch
from torch import nn

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RNN(nn.Module):
    """Embedding -> n_layer recurrent layers -> dropout -> Linear to logits, predicting at every position.

    The state starts at zero: every item begins with the boundary token, which the first step reads.
    Subclasses only choose the cell; torch's default init (uniform +-1/sqrt(hidden)) is kept.
    """

    view: ClassVar[str] = "sequence"
    cell: ClassVar[str] = "rnn"

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 16,
        emb_dim: int = 64,
        hidden: int = 64,
        n_layer: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, emb_dim)
        # torch applies dropout between stacked layers only, and warns if asked to with one layer
        self.rnn = CELLS[self.cell](emb_dim, hidden, n_layer, batch_first=True, dropout=dropout if n_layer > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.lm_head = nn.Linear(hidden, vocab_size)

    def char_embedding(self) -> torch.Tensor | None:
        return self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # idx: (B, T) character ids -> logits (B, T, V)
        h, _ = self.rnn(self.wte(idx))  # (B, T, hidden): the top layer's state after each position
        return self.lm_head(self.drop(h))


class GRU(RNN):
    """Gated recurrent unit: update and reset gates let the state keep information across many steps."""

    cell = "gru"


class LSTM(RNN):
    """Long short-term memory: a gated cell state alongside the hidden state."""

    cell = "lstm"
