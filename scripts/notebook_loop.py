"""The notebook's dataset cell and final training cell (../shared/seed/makemore-part2-mlp-notes.txt), which bench.py
measures against: on one thread (where it runs fastest), the lr decay at half of `steps`, no loss tracking."""

import random
import time

import torch
import torch.nn.functional as F


def build_datasets(words: list[str], block_size: int = 3):  # -> train, dev, test (X, Y); shuffles words in place
    stoi = {s: i + 1 for i, s in enumerate(sorted(set("".join(words))))} | {".": 0}
    random.Random(42).shuffle(words)  # the notebook's random.seed(42); random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    for part in (words[:n1], words[n1:n2], words[n2:]):
        X, Y = [], []
        for w in part:
            context = [0] * block_size
            for ch in w + ".":
                ix = stoi[ch]
                X.append(context)
                Y.append(ix)
                context = context[1:] + [ix]  # noqa: RUF005 (the notebook's own line)
        yield torch.tensor(X), torch.tensor(Y)


def train(Xtr: torch.Tensor, Ytr: torch.Tensor, steps: int) -> tuple[float, list[torch.Tensor]]:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2147483647)
    shapes = [(27, 10), (30, 200), 200, (200, 27), 27]
    C, W1, b1, W2, b2 = parameters = [torch.randn(shape, generator=g).requires_grad_() for shape in shapes]
    start = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (32,))
        emb = C[Xtr[ix]]  # (32, 3, 10)
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)  # (32, 200)
        logits = h @ W2 + b2  # (32, 27)
        loss = F.cross_entropy(logits, Ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < steps // 2 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
    return (time.perf_counter() - start) / steps, parameters  # seconds per step, [C, W1, b1, W2, b2]
