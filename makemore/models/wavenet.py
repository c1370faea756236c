"""A WaveNet-style hierarchical MLP (van den Oord et al. 2016), as built in Karpathy's "makemore part 5"."""

import math
from typing import ClassVar

import torch
from torch import nn


class WaveNet(nn.Module):
    """Embedding; per level of log2(block_size): fuse position pairs, Linear (no bias), BatchNorm, tanh; to logits."""

    view: ClassVar[str] = "context"

    def __init__(self, vocab_size: int, block_size: int = 8, emb_dim: int = 24, hidden: int = 128):
        super().__init__()
        if block_size < 2 or block_size & (block_size - 1):
            raise ValueError(
                f"wavenet needs block_size to be a power of 2 (2, 4, 8, 16...), got {block_size}: "
                "choose a block_size among those"
            )
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, emb_dim)  # N(0, 1), torch's default for nn.Embedding
        n_level = block_size.bit_length() - 1  # log2(block_size)
        fan_in = [2 * emb_dim] + [2 * hidden] * (n_level - 1)  # each level sees two fused positions
        self.fuse = nn.ModuleList(nn.Linear(n, hidden, bias=False) for n in fan_in)
        self.bn = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(n_level))
        self.lm_head = nn.Linear(hidden, vocab_size)
        with torch.no_grad():
            for lin in [*self.fuse, self.lm_head]:
                nn.init.normal_(lin.weight, std=1 / math.sqrt(lin.in_features))
            self.lm_head.weight.mul_(0.1)  # a less confident output layer: first loss near ln(V)
            self.lm_head.bias.zero_()

    def char_embedding(self) -> torch.Tensor | None:
        return self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[1] != self.block_size:  # any other T would fuse positions across contexts
            raise ValueError(f"wavenet reads exactly block_size={self.block_size} ids per context, got {idx.shape[1]}")
        x = self.wte(idx).flatten(0, 1)  # (B*T, C): rows in (batch, position) order
        for fuse, bn in zip(self.fuse, self.bn, strict=True):
            # rows 2j and 2j+1 are neighbouring positions of one context, so a view pairs them
            x = torch.tanh(bn(fuse(x.view(-1, 2 * x.shape[1]))))  # (B*T/2, 2C) -> (B*T/2, hidden)
        return self.lm_head(x)  # after log2(T) halvings x is (B, hidden)
