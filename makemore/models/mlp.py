"""Bengio et al. 2003's neural probabilistic language model, on characters: y = b + W x + U tanh(d + H x)."""

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """Embedding table C, one tanh hidden layer (H, d), softmax output (U, b), optional direct connections W.

    Parameter names and orientation follow the paper (and the notebook's C, W1, b1, W2, b2), so
    num_params = V*m + n*m*h + h + h*V + V (+ n*m*V with direct connections): 3481 for V=27, n=3,
    m=2, h=100.
    """

    view: ClassVar[str] = "context"  # sees the last block_size characters, predicts the next

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        emb_dim: int,
        hidden: int,
        direct: bool = False,
        init: Literal["randn", "scaled"] = "scaled",
        init_seed: int = 2147483647,
    ):
        super().__init__()
        self.block_size = block_size
        n_in = block_size * emb_dim
        self.C = nn.Parameter(torch.empty(vocab_size, emb_dim))  # character features, m per character
        self.H = nn.Parameter(torch.empty(n_in, hidden))  # seed's W1
        self.d = nn.Parameter(torch.empty(hidden))  # seed's b1
        self.U = nn.Parameter(torch.empty(hidden, vocab_size))  # seed's W2
        self.b = nn.Parameter(torch.empty(vocab_size))  # seed's b2
        self.W = nn.Parameter(torch.empty(n_in, vocab_size)) if direct else None
        self.reset_parameters(init, init_seed)

    @torch.no_grad()
    def reset_parameters(self, init: str, seed: int) -> None:
        """'randn': every tensor ~ N(0, 1) in the notebook's order (its loss starts near 17-27).
        'scaled': tanh-gain/fan-in hidden weights and a near-zero output layer, so the first loss is
        close to the uniform ln(V) and no step is wasted undoing saturated tanh units."""
        g = torch.Generator().manual_seed(seed)
        params = [p for p in (self.C, self.H, self.d, self.U, self.b, self.W) if p is not None]
        for p in params:
            p.copy_(torch.randn(p.shape, generator=g))
        if init == "randn":
            return
        if init != "scaled":
            raise ValueError(f"unknown init {init!r}: use 'randn' or 'scaled'")
        self.H.mul_(5 / 3 / math.sqrt(self.H.shape[0]))
        self.d.mul_(0.01)
        self.U.mul_(0.01)
        self.b.zero_()
        if self.W is not None:
            self.W.mul_(0.01)

    def char_embedding(self) -> torch.Tensor:
        return self.C

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # idx: (B, T) character ids -> logits (B, V)
        x = F.embedding(idx, self.C).flatten(1)  # (B, T*m), the notebook's C[idx] with a faster backward
        h = torch.tanh(torch.addmm(self.d, x, self.H))  # (B, h)
        y = torch.addmm(self.b, h, self.U)  # (B, V)
        if self.W is not None:
            y = y + x @ self.W  # direct connections from the features to the output
        return y
