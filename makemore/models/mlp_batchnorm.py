"""The seed's MLP with Batch Normalization (Ioffe & Szegedy 2015), as in Karpathy's "makemore part 3"; eval mode
uses the running statistics. loss_and_grad backpropagates by hand (part 4), through the batch statistics."""

from typing import ClassVar, Literal

import torch
from torch import nn

from makemore.models.mlp import accumulate, accumulate_rows, cross_entropy_and_grad, refuse_autograd


class MLPBatchNorm(nn.Module):
    """Embedding, n_layer x (Linear without bias, BatchNorm1d, tanh), Linear to logits, with the lecture's init."""

    view: ClassVar[str] = "context"

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 3,
        emb_dim: int = 10,
        hidden: int = 200,
        n_layer: int = 1,
        bn_momentum: float = 0.001,
        init_seed: int = 2147483647,
        backward: Literal["autograd", "manual"] = "autograd",
    ):
        super().__init__()
        self.block_size = block_size
        self.backward = backward  # which the trainer calls: loss.backward(), or loss_and_grad's own by hand
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
        x = self.wte(idx).flatten(1)  # (B, T*m): the context's embeddings side by side
        h = self.layers(x)  # (B, hidden): tanh(BN(x W)), n_layer times
        return self.lm_head(h)  # (B, V)

    def loss_and_grad(self, idx: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """forward's mean cross-entropy, adding scale * its gradient to every .grad as (scale * loss).backward() would;
        in training mode BatchNorm uses and moves its statistics as nn.BatchNorm1d does; under torch.no_grad()."""
        refuse_autograd()
        B = idx.shape[0]
        x = torch.embedding(self.wte.weight, idx).view(B, -1)  # (B, T*m)
        tape = []  # per block: its Linear and BatchNorm, input x, xhat (B, hidden), gamma / std (hidden,), output h
        for linear, bn in zip(self.layers[0::3], self.layers[1::3], strict=True):
            pre = torch.mm(x, linear.weight.t())  # (B, hidden)
            var, mean = bn.running_var, bn.running_mean  # eval mode: the running estimates
            if bn.training:  # the batch's statistics (hidden,), the running ones moved towards them
                var, mean = torch.var_mean(pre, 0, correction=0)
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var * (B / (B - 1)), bn.momentum)  # unbiased, as nn.BatchNorm1d keeps it
                bn.num_batches_tracked.add_(1)
            invstd = (var + bn.eps).rsqrt_()  # 1 / std (hidden,)
            xhat = (pre - mean).mul_(invstd)  # (B, hidden), unit variance
            h = torch.addcmul(bn.bias, xhat, bn.weight).tanh_()  # tanh(gamma * xhat + beta)
            tape.append((linear, bn, x, xhat, bn.weight * invstd, h))
            x = h
        logits = torch.addmm(self.lm_head.bias, x, self.lm_head.weight.t())  # (B, V)
        loss, dlogits = cross_entropy_and_grad(logits, targets, scale)  # dlogits (B, V)
        accumulate(self.lm_head.weight, torch.mm(dlogits.t(), x))  # dW = dlogits^T h (V, hidden)
        accumulate(self.lm_head.bias, dlogits.sum(0))  # db
        dh = torch.mm(dlogits, self.lm_head.weight)  # dh (B, hidden)
        for linear, bn, x, xhat, gain, h in reversed(tape):
            dy = dh.addcmul_(dh * h, h, value=-1.0)  # dy = dh * (1 - h^2), BatchNorm's output through tanh
            dbeta, dgamma = dy.sum(0), (dy * xhat).sum(0)  # dbeta, dgamma (hidden,)
            accumulate(bn.bias, dbeta)
            accumulate(bn.weight, dgamma)
            if bn.training:  # dpre = gamma/std * (dy - mean(dy) - xhat * mean(dy * xhat)): the mean and var move
                dy.sub_(dbeta, alpha=1 / B).addcmul_(xhat, dgamma, value=-1 / B)
            dpre = dy.mul_(gain)  # dpre (B, hidden); in eval mode just gamma / std, the statistics fixed
            accumulate(linear.weight, torch.mm(dpre.t(), x))  # dW = dpre^T x (hidden, fan_in)
            dh = torch.mm(dpre, linear.weight)  # dx = dpre W (B, fan_in): the block below's dh
        accumulate_rows(self.wte.weight, idx, dh)  # dC[idx[b, t]] += dx[b, t]
        return loss
