"""A GPT-style decoder-only Transformer (Vaswani et al. 2017; Radford et al. 2019, GPT-2), laid out as in
Karpathy's nanoGPT: pre-LayerNorm blocks of causal self-attention and MLP."""

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions <= t, in one fused SDPA call."""

    def __init__(self, emb_dim: int, n_head: int, attn_dropout: float, resid_dropout: float, bias: bool):
        super().__init__()
        self.n_head = n_head
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(emb_dim, 3 * emb_dim, bias=bias)  # queries, keys and values of all heads at once
        self.proj = nn.Linear(emb_dim, emb_dim, bias=bias)  # a residual projection
        self.drop = nn.Dropout(resid_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> (3, B, n_head, T, head_dim)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0  # on the attention weights
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, n_head, T, head_dim)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))  # heads side by side: (B, T, C)


class Block(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)): the pre-LayerNorm residual block of GPT-2."""

    def __init__(self, emb_dim: int, n_head: int, hidden: int, attn_dropout: float, resid_dropout: float, bias: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(emb_dim, bias=bias)
        self.attn = CausalSelfAttention(emb_dim, n_head, attn_dropout, resid_dropout, bias)
        self.ln_2 = nn.LayerNorm(emb_dim, bias=bias)
        self.mlp = nn.Sequential(
            nn.Linear(emb_dim, hidden, bias=bias), nn.GELU(), nn.Linear(hidden, emb_dim, bias=bias)
        )
        self.drop = nn.Dropout(resid_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.drop(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):
    """Embeddings, n_layer blocks, LayerNorm, Linear to logits; nanoGPT's init; attn/resid_dropout null: `dropout`."""

    view: ClassVar[str] = "sequence"

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 16,
        emb_dim: int = 64,
        n_layer: int = 4,
        n_head: int = 4,
        hidden: int = 256,
        dropout: float = 0.0,
        bias: bool = True,
        attn_dropout: float | None = None,
        resid_dropout: float | None = None,
    ):
        super().__init__()
        if emb_dim % n_head:
            raise ValueError(f"transformer needs emb_dim divisible by n_head, got emb_dim={emb_dim}, n_head={n_head}")
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, emb_dim)
        self.wpe = nn.Embedding(block_size, emb_dim)
        self.drop = nn.Dropout(dropout)
        attn_p = dropout if attn_dropout is None else attn_dropout
        resid_p = dropout if resid_dropout is None else resid_dropout
        self.blocks = nn.Sequential(*(Block(emb_dim, n_head, hidden, attn_p, resid_p, bias) for _ in range(n_layer)))
        self.ln_f = nn.LayerNorm(emb_dim, bias=bias)
        self.lm_head = nn.Linear(emb_dim, vocab_size, bias=bias)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp[2]):  # mlp[2]: the MLP's output Linear
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * n_layer))

    def char_embedding(self) -> torch.Tensor | None:
        return self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe.weight[:T])  # (B, T, C)
        return self.lm_head(self.ln_f(self.blocks(x)))
