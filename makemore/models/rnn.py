"""Recurrent models as in Karpathy's makemore: the Elman RNN (Elman 1990), the GRU (Cho et al. 2014) and the
LSTM (Hochreiter & Schmidhuber 1997), run with torch's fused nn.RNN/GRU/LSTM."""

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


class RNN(nn.Module):
    """Embedding, n_layer recurrent layers, dropout, Linear to logits at every position. AWD-LSTM's regularization
    (Merity et al. 2017), off by default: `emb_dropout` drops characters, `weight_dropout` DropConnects weight_hh."""

    view: ClassVar[str] = "sequence"
    cell: ClassVar[type[nn.RNNBase]] = nn.RNN

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 16,
        emb_dim: int = 64,
        hidden: int = 64,
        n_layer: int = 1,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        weight_dropout: float = 0.0,
    ):
        super().__init__()
        self.block_size = block_size
        self.emb_dropout, self.weight_dropout = emb_dropout, weight_dropout
        self.wte = nn.Embedding(vocab_size, emb_dim)
        # torch applies dropout between stacked layers only, and warns if asked to with one layer
        self.rnn = self.cell(emb_dim, hidden, n_layer, batch_first=True, dropout=dropout if n_layer > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.lm_head = nn.Linear(hidden, vocab_size)

    def char_embedding(self) -> torch.Tensor | None:
        return self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        table = self.wte.weight  # (V, emb_dim)
        if self.training and self.emb_dropout:  # one keep/drop per character: a (V, 1) mask
            table = table * F.dropout(table.new_ones(table.shape[0], 1), self.emb_dropout)
        x = F.embedding(idx, table)  # (B, T, emb_dim)
        if self.training and self.weight_dropout:
            hh = {n: F.dropout(w, self.weight_dropout) for n, w in self.rnn.named_parameters() if "weight_hh" in n}
            h, _ = functional_call(self.rnn, hh, (x,))
        else:
            h, _ = self.rnn(x)  # (B, T, hidden): the top layer's state after each position
        return self.lm_head(self.drop(h))


class GRU(RNN):
    """Gated recurrent unit: update and reset gates let the state keep information across many steps."""

    cell = nn.GRU


class LSTM(RNN):
    """Long short-term memory: a gated cell state alongside the hidden state."""

    cell = nn.LSTM
