"""A causal bag of words, the "attention with uniform weights" step before the Transformer in Karpathy's makemore."""

from typing import ClassVar

import torch
from torch import nn


class BoW(nn.Module):
    """Token + position embeddings, n_layer residual blocks (causal mean of positions 0..t, MLP), Linear to logits."""

    view: ClassVar[str] = "sequence"

    def __init__(self, vocab_size: int, block_size=16, emb_dim=64, hidden=64, n_layer=1, dropout=0.0):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, emb_dim)
        self.wpe = nn.Embedding(block_size, emb_dim)  # learned positions
        tril = torch.tril(torch.ones(block_size, block_size))
        self.register_buffer("avg", tril / tril.sum(1, keepdim=True), persistent=False)  # (T, T), rows sum to 1
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(emb_dim, hidden), nn.Tanh(), nn.Linear(hidden, emb_dim)) for _ in range(n_layer)
        )
        self.drop = nn.Dropout(dropout)
        self.lm_head = nn.Linear(emb_dim, vocab_size)

    def char_embedding(self) -> torch.Tensor | None:
        return self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:T]  # (B, T, C)
        avg = self.avg[:T, :T]
        for mlp in self.mlps:
            x = x + self.drop(avg @ x)  # (T, T) @ (B, T, C): position t gets the mean of positions 0..t
            x = x + self.drop(mlp(x))
        return self.lm_head(x)
