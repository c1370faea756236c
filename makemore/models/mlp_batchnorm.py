"""The seed's MLP with Batch Normalization (Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift"), as built in Karpathy's "makemore part 3".

BatchNorm standardizes each hidden unit's pre-activation over the minibatch, then scales and shifts it by a
learned gain and bias: the tanh inputs stay near unit Gaussian, neither saturated nor linear, whatever the
weights do. In eval mode it uses running estimates of the mean and variance instead, so one context alone
(sampling, scoring) gets the same logits as it would inside any batch.
"""

from typing import ClassVar

import torch
from torch import nn


class MLPBatchNorm(nn.Module):
    """Embedding table, n_layer x (Linear without bias, BatchNorm1d, tanh), Linear to the logits.

    The lecture's init: N(0, 1) embedding, hidden weights N(0, (5/3)^2 / fan_in) (Kaiming with the tanh
    gain), the output layer x0.01 and zero bias, so the first loss is near ln(V). A bias before BatchNorm
    would be subtracted out again, so the hidden Linears have none (BatchNorm's own bias replaces it).
    bn_momentum: the running statistics' update rate, the lecture's 0.001 (torch's default is 0.1).
    12,097 parameters for V=27, block_size 3, emb_dim 10, hidden 200, n_layer 1.
    """

    view: ClassVar[str] = "context"  # sees the last block_size characters, predicts the next

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 3,
        emb_dim: int = 10,
        hidden: int = 200,
        n_layer: int = 1,
        bn_momentum: float = 0.001,
        init_seed: int = 2147483647,
    ):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, emb_dim)
        layers: list[nn.Module] = []
        for i in range(n_layer):
            fan_in = block_size * emb_dim if i == 0 else hidden
            layers += [nn.Linear(fan_in, hidden, bias=False), nn.BatchNorm1d(hidden, momentum=bn_momentum), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.lm_head = nn.Linear(hidden, vocab_size)
        g = torch.Generator().manual_seed(init_seed)
        with torch.no_grad():
            self.wte.weight.normal_(generator=g)
            for layer in self.layers:
                if isinstance(layer, nn.Linear):  # std (5/3) / sqrt(fan_in)
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="tanh", generator=g)
            self.lm_head.weight.normal_(generator=g).mul_(0.01)  # an unconfident output layer: loss ~ ln(V)
            self.lm_head.bias.zero_()

    def char_embedding(self) -> torch.Tensor:
        return self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # idx: (B, T) character ids, T = block_size -> logits (B, V)
        x = self.wte(idx).flatten(1)  # (B, T*m): the context's embeddings side by side
        h = self.layers(x)  # (B, hidden): tanh(BN(x W)), n_layer times
        return self.lm_head(h)  # (B, V)
