import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from makemore.models.bigram import Bigram
from makemore.models.bow import BoW
from makemore.models.mlp_batchnorm import MLPBatchNorm
from makemore.models.rnn import GRU, LSTM, RNN
from makemore.models.transformer import Transformer
from makemore.models.wavenet import WaveNet
from makemore.optim import build_optimizer

V = 27
SEQUENCE = [RNN, GRU, LSTM, BoW, Transformer]
CONTEXT = [Bigram, MLPBatchNorm, WaveNet]
DEFAULT_BLOCK_SIZE = {Bigram: 1, MLPBatchNorm: 3, WaveNet: 8}  # the sequence models: 16
ALL = CONTEXT + SEQUENCE


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are too small to gain from threads, and on a busy machine (xdist workers side by side)
    two threads per process can make a step 10-100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def walk(n: int, length: int) -> torch.Tensor:
    """n runs of ids following a fixed successor rule from random starts: learnable from the last id alone."""
    ids = torch.empty(n, length, dtype=torch.long)
    ids[:, 0] = torch.randint(0, V, (n,))
    for t in range(1, length):
        ids[:, t] = (7 * ids[:, t - 1] + 3) % V
    return ids


@pytest.mark.parametrize("family", ALL)
def test_interface(family):
    model = family(V)
    assert family.view in ("context", "sequence")
    assert model.block_size == DEFAULT_BLOCK_SIZE.get(family, 16)


@pytest.mark.parametrize("family", SEQUENCE)
def test_changing_position_t_never_changes_earlier_logits(family):
    torch.manual_seed(0)
    model = family(V).eval()
    x = torch.randint(0, V, (4, model.block_size))
    with torch.no_grad():
        before = model(x)
        for t in (0, 1, 5, model.block_size - 1):
            x2 = x.clone()
            x2[:, t] = (x[:, t] + 1) % V
            after = model(x2)
            assert torch.equal(after[:, :t], before[:, :t]), f"position {t} leaked into earlier logits"
            assert (after[:, t] - before[:, t]).abs().max() > 1e-4, f"position {t} does not see its own id"


@pytest.mark.parametrize("family", SEQUENCE)
def test_every_prefix_gives_the_logits_of_the_full_run(family):
    torch.manual_seed(0)
    model = family(V).eval()
    x = torch.randint(0, V, (3, model.block_size))
    with torch.no_grad():
        full = model(x)
        assert full.shape == (3, model.block_size, V)
        for T in range(1, model.block_size + 1):
            assert torch.allclose(model(x[:, :T]), full[:, :T], atol=1e-5), f"length {T}"


@pytest.mark.parametrize("family", CONTEXT)
def test_context_models_give_one_row_of_logits_per_context(family):
    torch.manual_seed(0)
    model = family(V)
    x = torch.randint(0, V, (5, model.block_size))
    assert model(x).shape == (5, V)
    assert model.eval()(x[:1]).shape == (1, V)  # sampling feeds one context at a time


def test_bigram_reads_only_the_last_id():
    torch.manual_seed(0)
    model = Bigram(V, block_size=4)
    with torch.no_grad():
        model.logits.normal_()  # the zero init would hide a dependence on anything
    x = torch.randint(0, V, (6, 4))
    earlier = x.clone()
    earlier[:, :-1] = (x[:, :-1] + 1) % V
    last = x.clone()
    last[:, -1] = (x[:, -1] + 1) % V
    assert torch.equal(model(earlier), model(x))
    assert not torch.equal(model(last), model(x))


def test_wavenet_has_the_lectures_parameter_count():
    model = WaveNet(V, block_size=8, emb_dim=24, hidden=128)
    assert sum(p.numel() for p in model.parameters()) == 76_579


@pytest.mark.parametrize("block_size", [0, 1, 6, 12])
def test_wavenet_refuses_a_block_size_that_is_not_a_power_of_two(block_size):
    with pytest.raises(ValueError, match=rf"power of 2.*got {block_size}"):
        WaveNet(V, block_size=block_size)


def test_wavenet_refuses_a_context_of_another_length():
    with pytest.raises(ValueError, match=r"block_size=8.*got 4"):
        WaveNet(V)(torch.zeros(6, 4, dtype=torch.long))


def test_wavenet_first_loss_is_near_uniform():
    torch.manual_seed(0)
    x, y = torch.randint(0, V, (512, 8)), torch.randint(0, V, (512,))
    assert abs(F.cross_entropy(WaveNet(V)(x), y).item() - math.log(V)) < 0.1


def test_mlp_batchnorm_has_the_lectures_parameter_count():
    # the lecture's 12,297 less the hidden bias it kept (BatchNorm subtracts it out): 270 + 6000 + 400 + 5427
    assert sum(p.numel() for p in MLPBatchNorm(V).parameters()) == 12_097


def test_mlp_batchnorm_first_loss_is_near_uniform():
    torch.manual_seed(0)
    x, y = torch.randint(0, V, (512, 3)), torch.randint(0, V, (512,))
    assert abs(F.cross_entropy(MLPBatchNorm(V)(x), y).item() - math.log(V)) < 0.05


def test_mlp_batchnorm_standardizes_the_pre_activations_whatever_the_weights():
    """In training, each hidden unit's tanh input is unit Gaussian over the minibatch even with weights that
    would saturate tanh without BatchNorm (x10 and a shift: most |x W| above 3)."""
    torch.manual_seed(0)
    model = MLPBatchNorm(V, n_layer=2).train()
    with torch.no_grad():
        for layer in model.layers:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(10).add_(1)
    pre = []
    hooks = [m.register_forward_hook(lambda m, i, o: pre.append((i[0], o))) for m in model.layers[1::3]]
    model(torch.randint(0, V, (256, 3)))
    for hook in hooks:
        hook.remove()
    assert len(pre) == 2
    for before, after in pre:
        assert (before.abs() > 3).float().mean() > 0.5  # what tanh would have seen: mostly saturated
        assert after.mean(0).abs().max() < 1e-5
        assert (after.var(0, unbiased=False) - 1).abs().max() < 1e-3


def test_mlp_batchnorm_scores_one_context_alone_with_its_running_statistics():
    """Eval mode: one context's logits are the same alone as inside a batch, and from a saved state_dict
    (the running mean and variance are buffers in it); training mode: they depend on the batch."""
    torch.manual_seed(0)
    model = MLPBatchNorm(V, bn_momentum=0.5).train()
    with torch.no_grad():
        for _ in range(5):  # move the running statistics away from (0, 1)
            model(torch.randint(0, V, (64, 3)))
    bn = model.layers[1]
    assert bn.running_mean.abs().max() > 0.1 and int(bn.num_batches_tracked) == 5
    x = torch.randint(0, V, (16, 3))
    with torch.no_grad():
        assert not torch.allclose(model(x)[:1], model(x[:4])[:1], atol=1e-4)  # batch statistics
        model.eval()
        together = model(x)
        assert torch.allclose(model(x[:1]), together[:1], atol=1e-6)
        copy = MLPBatchNorm(V, init_seed=1).eval()
        copy.load_state_dict(model.state_dict())
        assert torch.equal(copy(x), together)


def test_mlp_batchnorm_gains_get_no_weight_decay_and_buffers_are_not_parameters():
    torch.manual_seed(0)
    model = MLPBatchNorm(V, hidden=16)
    optimizer = build_optimizer({"name": "sgd", "lr": 0.1, "weight_decay": 0.1}, model)
    decay, no_decay = (group["params"] for group in optimizer.param_groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    assert sum(p.numel() for p in decay) == 27 * 10 + 30 * 16 + 16 * 27  # the embedding and the two weight matrices
    assert sum(p.numel() for p in no_decay) == 16 + 16 + 27  # BatchNorm's gain and bias, the output bias
    bn = model.layers[1]
    assert any(p is bn.weight for p in no_decay)  # BatchNorm's gain is not decayed
    mean_before = bn.running_mean.clone()
    x, y = torch.randint(0, V, (32, 3)), torch.randint(0, V, (32,))
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert not torch.equal(bn.running_mean, mean_before)  # the running statistics still update in training
    assert not torch.equal(bn.weight, torch.ones(16))  # and the gain is trained
    assert all(all(b is not p for p in model.parameters()) for b in model.buffers())


def test_transformer_refuses_emb_dim_not_divisible_by_n_head():
    with pytest.raises(ValueError, match=r"emb_dim=30.*n_head=4"):
        Transformer(V, emb_dim=30, n_head=4)


@pytest.mark.parametrize("family", ALL)
def test_char_embedding_is_the_models_own_table(family):
    if family is Bigram:
        assert family(V).char_embedding() is None
        return
    kwargs = {"emb_dim": 12} | ({"n_head": 3} if family is Transformer else {})
    model = family(V, **kwargs)
    emb = model.char_embedding()
    assert emb.shape == (V, 12)
    assert any(emb is p for p in model.parameters())


@pytest.mark.parametrize("family", [RNN, GRU, LSTM, BoW, Transformer])
def test_dropout_is_active_in_training_only(family):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about inter-layer dropout with one layer
        model = family(V, n_layer=2, dropout=0.5)
        family(V, n_layer=1, dropout=0.5)
    x = torch.randint(0, V, (4, 16))
    assert not torch.equal(model.train()(x), model(x))
    assert torch.equal(model.eval()(x), model(x))


@pytest.mark.parametrize("family", ALL)
def test_a_hundred_steps_learn_a_fixed_batch(family):
    torch.manual_seed(0)
    model = family(V)
    ids = walk(32, model.block_size + 1)
    if family.view == "context":
        x, y = ids[:, :-1], ids[:, -1]
    else:
        x, y = ids[:, :-1], ids[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    # ignoring the ids leaves about ln(32) at best; the bigram table moves ~lr per step, so it is slower
    limit = 0.6 * math.log(V) if family is Bigram else 0.1 * math.log(V)
    assert loss.item() < limit, f"loss {loss.item():.3f} after 100 steps"
