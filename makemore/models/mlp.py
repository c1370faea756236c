"""Bengio et al. 2003's neural probabilistic language model, on characters: y = b + W x + U tanh(d + H x).
loss_and_grad (model.backward=manual) is makemore part 4's "backprop ninja": autograd's gradients by hand."""

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """Embedding C, tanh hidden layer (H, d), output (U, b), optional direct connections W, named as in the paper:
    num_params = V*m + n*m*h + h + h*V + V (+ n*m*V direct): 3481 for V=27, n=3, m=2, h=100."""

    view: ClassVar[str] = "context"

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        emb_dim: int,
        hidden: int,
        direct: bool = False,
        init: Literal["randn", "scaled"] = "scaled",
        init_seed: int = 2147483647,
        backward: Literal["autograd", "manual"] = "autograd",
    ):
        super().__init__()
        self.block_size = block_size
        self.backward = backward  # which the trainer calls: loss.backward(), or loss_and_grad's own by hand
        n_in = block_size * emb_dim
        g = torch.Generator().manual_seed(init_seed)
        # 'randn': the notebook's N(0, 1) for every tensor, in its order; 'scaled': tanh-gain/fan-in H, output ~0
        self.C = nn.Parameter(torch.randn(vocab_size, emb_dim, generator=g))  # character features, m per character
        self.H = nn.Parameter(torch.randn(n_in, hidden, generator=g))  # seed's W1
        self.d = nn.Parameter(torch.randn(hidden, generator=g))  # seed's b1
        self.U = nn.Parameter(torch.randn(hidden, vocab_size, generator=g))  # seed's W2
        self.b = nn.Parameter(torch.randn(vocab_size, generator=g))  # seed's b2
        self.W = nn.Parameter(torch.randn(n_in, vocab_size, generator=g)) if direct else None
        if init == "scaled":
            with torch.no_grad():
                self.H.mul_(5 / 3 / math.sqrt(n_in))
                for p in (p for p in (self.d, self.U, self.W) if p is not None):
                    p.mul_(0.01)
                self.b.zero_()

    def char_embedding(self) -> torch.Tensor:
        return self.C

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = F.embedding(idx, self.C).flatten(1)  # (B, T*m): C[idx] with a faster backward
        h = torch.tanh(torch.addmm(self.d, x, self.H))  # (B, h)
        y = torch.addmm(self.b, h, self.U)  # (B, V)
        if self.W is not None:
            y = y + x @ self.W  # direct connections from the features to the output
        return y

    def loss_and_grad(self, idx: torch.Tensor, targets: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """forward's mean cross-entropy, adding scale * its gradient to .grad as (scale * loss).backward() would;
        under the caller's torch.no_grad() or inference_mode: a context per call would slow the step."""
        refuse_autograd()
        B = idx.shape[0]
        x = torch.embedding(self.C, idx).view(B, -1)  # (B, T*m)
        h = torch.addmm(self.d, x, self.H).tanh_()  # (B, h)
        logits = torch.addmm(self.b, h, self.U)  # (B, V)
        if self.W is not None:
            logits.addmm_(x, self.W)
        loss, dlogits = cross_entropy_and_grad(logits, targets, scale)  # dlogits (B, V)
        dh = torch.mm(dlogits, self.U.t())  # dh = dlogits U^T (B, h)
        accumulate(self.U, torch.mm(h.t(), dlogits))  # dU = h^T dlogits
        accumulate(self.b, dlogits.sum(0))  # db
        dpre = dh.addcmul_(dh * h, h, value=-1.0)  # dpre = dh * (1 - h^2): tanh' from its output, in dh's buffer
        accumulate(self.H, torch.mm(x.t(), dpre))  # dH = x^T dpre
        accumulate(self.d, dpre.sum(0))  # dd
        dx = torch.mm(dpre, self.H.t())  # dx = dpre H^T (B, T*m)
        if self.W is not None:
            accumulate(self.W, torch.mm(x.t(), dlogits))  # dW = x^T dlogits
            dx.addmm_(dlogits, self.W.t())  # dx += dlogits W^T
        accumulate_rows(self.C, idx, dx)  # dC[idx[b, t]] += dx[b, t]: the gather's backward is a scatter-add
        return loss


def refuse_autograd() -> None:
    if torch.is_grad_enabled():  # before any work (BatchNorm's stats): autograd would record every op of the pass
        raise RuntimeError("loss_and_grad derives the gradients itself: call it under torch.no_grad()")


def cross_entropy_and_grad(logits: torch.Tensor, targets: torch.Tensor, scale: float) -> tuple[torch.Tensor, ...]:
    """(mean cross-entropy, dlogits = (softmax - onehot(targets)) * scale / B), in the log-probabilities' buffer."""
    s = scale / logits.shape[0]
    logp = torch.log_softmax(logits, 1)  # (B, V)
    loss = F.nll_loss(logp, targets)  # mean of -logp[b, targets[b]]
    return loss, logp.exp_().mul_(s).scatter_(1, targets.view(-1, 1), -s, reduce="add")  # (softmax - onehot) s


def accumulate(p: nn.Parameter, grad: torch.Tensor) -> None:
    """p.grad += grad, or p.grad = grad when there is none yet, as autograd's AccumulateGrad does."""
    p.grad = grad if p.grad is None else p.grad.add_(grad)


def accumulate_rows(table: nn.Parameter, idx: torch.Tensor, drows: torch.Tensor) -> None:
    """table.grad[idx] += drows (B, T*m) row by row, repeated ids adding up: an embedding's backward."""
    if table.grad is None:
        table.grad = torch.zeros_like(table)
    table.grad.index_add_(0, idx.reshape(-1), drows.view(-1, table.shape[1]))
