"""AWD-LSTM's embedding and weight dropout, the Transformer's attention/residual dropout, optimizer=muon, ema=."""

import pytest
import torch

from makemore.errors import ConfigError
from makemore.models import LSTM, MODELS, Transformer, hidden_matrices
from makemore.optim import MuonWithAdamW, build_optimizer
from makemore.schema import check_model

from .conftest import run_script

IDX = torch.randint(0, 27, (8, 10), generator=torch.Generator().manual_seed(0))


def test_emb_dropout_drops_whole_characters_in_training_only():
    torch.manual_seed(0)
    model = LSTM(27, emb_dim=8, hidden=16, emb_dropout=0.5)
    plain = LSTM(27, emb_dim=8, hidden=16)
    plain.load_state_dict(model.state_dict())  # same keys: a checkpoint does not change
    model.eval(), plain.eval()
    assert torch.equal(model(IDX), plain(IDX))
    model.train()
    seen = []
    model.rnn.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    model(IDX)
    x = seen[0]  # (B, T, emb_dim) what the LSTM read
    zero = x.abs().sum(-1) == 0  # (B, T)
    for char in IDX.unique():  # a character is dropped everywhere in the minibatch, or nowhere
        assert zero[char == IDX].all() or not zero[char == IDX].any()
    assert zero.any() and not zero.all()


def test_weight_dropout_is_dropconnect_on_the_recurrent_weights():
    torch.manual_seed(0)
    model = LSTM(27, emb_dim=8, hidden=16, n_layer=2, weight_dropout=0.5)
    plain = LSTM(27, emb_dim=8, hidden=16, n_layer=2)
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    assert torch.equal(model(IDX), plain(IDX))  # at eval time the weights themselves
    model.train()
    a, b = model(IDX), model(IDX)
    assert not torch.allclose(a, b)  # a new mask per minibatch
    a.sum().backward()
    grad = model.rnn.weight_hh_l1.grad
    assert grad is not None and 0.3 < (grad == 0).float().mean() < 0.7  # dropped weights get no gradient
    assert model.rnn.weight_hh_l0.data.abs().min() > 0  # the parameters are untouched


def test_transformer_attention_and_residual_dropout():
    model = Transformer(27, n_layer=2, dropout=0.1)
    assert model.blocks[0].attn.attn_dropout == 0.1 and model.blocks[0].drop.p == 0.1  # null: dropout's
    model = Transformer(27, n_layer=2, dropout=0.1, attn_dropout=0.0, resid_dropout=0.3)
    block = model.blocks[1]
    assert (block.attn.attn_dropout, block.attn.drop.p, block.drop.p, model.drop.p) == (0.0, 0.3, 0.3, 0.1)
    with pytest.raises(ConfigError, match="attn_dropout"):
        check_model({"name": "transformer", "attn_dropout": 1.5})
    with pytest.raises(ConfigError, match="weight_dropout"):
        check_model({"name": "lstm", "weight_dropout": -0.1})


@pytest.mark.parametrize("name", list(MODELS))
def test_muon_takes_the_hidden_matrices_only(name):
    cls = MODELS[name]
    knobs = {"block_size": 4, "emb_dim": 8, "hidden": 20} if name != "bigram" else {}
    model = cls(vocab_size=27, **knobs)
    chosen = {id(p) for p in hidden_matrices(model)}
    for pname, p in model.named_parameters():
        is_table = pname.startswith(("wte", "wpe")) or pname in ("C", "logits")
        is_output = pname.startswith("lm_head") or pname == "U"
        assert (id(p) in chosen) == (p.dim() == 2 and not is_table and not is_output), pname


def test_muon_trains_and_its_state_round_trips():
    torch.manual_seed(0)
    model = Transformer(27, n_layer=2, dropout=0.0)
    config = {"name": "muon", "lr": 3e-3, "weight_decay": 0.01, "betas": [0.9, 0.99]}
    optimizer = build_optimizer(config, model)
    assert isinstance(optimizer, MuonWithAdamW)
    assert all(p.dim() == 2 for p in optimizer.muon.param_groups[0]["params"])
    y = IDX.roll(-1, 1)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(IDX).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1.0
    again = build_optimizer(config, Transformer(27, n_layer=2, dropout=0.0))
    again.load_state_dict(optimizer.state_dict())
    assert again.state_dict()["muon"]["state"].keys() == optimizer.state_dict()["muon"]["state"].keys()
    with pytest.raises(ConfigError, match="is for hidden layers"):
        build_optimizer(config, MODELS["bigram"](vocab_size=27))


@pytest.mark.parametrize(
    ("args", "words"),
    [(["ema=1.5"], ["ema", "(0, 1)"]), (["model=bigram", "optimizer=muon"], ["muon", "optimizer=adamw"])],
)
def test_ema_and_muon_are_checked_at_the_door(tmp_path, args, words):
    result = run_script("train.py", *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert all(word in line for word in words), line
    assert not (tmp_path / "run").exists()
