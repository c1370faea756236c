import math

import pytest
import torch
import torch.nn.functional as F

from makemore.models import MLP
from makemore.optim import param_groups


@pytest.mark.parametrize(
    ("emb_dim", "hidden", "direct", "expected"),
    [(2, 100, False, 3481), (10, 200, False, 11897), (2, 100, True, 3643)],
)
def test_num_params_equals_the_papers_formula(emb_dim, hidden, direct, expected):
    # The paper's |V|(1 + nm + h) + h(1 + (n-1)m) counts n-1 context words and W; with c = n-1
    # context characters and W optional it is |V|(1 + m + h) + h(1 + cm) (+ |V|cm for W).
    V, c, m, h = 27, 3, emb_dim, hidden
    model = MLP(V, c, m, h, direct=direct)
    formula = V * (1 + m + h) + h * (1 + c * m) + (V * c * m if direct else 0)
    assert sum(p.numel() for p in model.parameters()) == formula == expected


def test_randn_init_reproduces_the_seed_tensors():
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g)
    b1 = torch.randn(200, generator=g)
    W2 = torch.randn((200, 27), generator=g)
    b2 = torch.randn(27, generator=g)
    model = MLP(27, 3, 10, 200, init="randn", init_seed=2147483647)
    for ours, seed in zip((model.C, model.H, model.d, model.U, model.b), (C, W1, b1, W2, b2), strict=True):
        assert torch.equal(ours.data, seed)
    x = torch.randint(0, 27, (5, 3))
    expected = torch.tanh(C[x].view(-1, 30) @ W1 + b1) @ W2 + b2
    assert torch.allclose(model(x), expected, atol=1e-5)


def test_scaled_init_starts_near_uniform_loss_and_randn_far_above():
    x, y = torch.randint(0, 27, (4096, 3)), torch.randint(0, 27, (4096,))
    scaled = F.cross_entropy(MLP(27, 3, 10, 200, init="scaled")(x), y).item()
    randn = F.cross_entropy(MLP(27, 3, 10, 200, init="randn")(x), y).item()
    assert abs(scaled - math.log(27)) < 0.05
    assert randn > 10


def test_direct_connections_change_the_output():
    torch.manual_seed(0)
    model = MLP(27, 3, 2, 100, direct=True)
    x = torch.randint(0, 27, (8, 3))
    without = model(x) - (model.C[x].flatten(1) @ model.W)
    with torch.no_grad():
        model.W.zero_()
    assert torch.allclose(model(x), without, atol=1e-6)


def test_weight_decay_on_weights_and_embedding_not_biases():
    model = MLP(27, 3, 2, 100, direct=True)
    decay, no_decay = param_groups(model.parameters(), weight_decay=1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model.C), id(model.H), id(model.U), id(model.W)}
    assert {id(p) for p in no_decay["params"]} == {id(model.d), id(model.b)}


def test_without_weight_decay_one_group_holds_every_parameter():
    model = MLP(27, 3, 2, 100)
    (group,) = param_groups(model.parameters(), weight_decay=0.0)
    assert len(group["params"]) == len(list(model.parameters())) and group["weight_decay"] == 0.0
