"""model.backward=manual: loss_and_grad's hand-derived gradients are autograd's, in float64 to within 1e-10."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from makemore.errors import ConfigError
from makemore.models import MLP, MLPBatchNorm, build_model
from makemore.schema import check_model

V, B, TOL = 27, 24, 1e-10
MODELS = {
    "mlp": lambda: MLP(V, 3, 4, 16),
    "mlp_direct": lambda: MLP(V, 3, 4, 16, direct=True),
    "mlp_batchnorm_1": lambda: MLPBatchNorm(V, 3, 4, 16, n_layer=1, bn_momentum=0.1),
    "mlp_batchnorm_2": lambda: MLPBatchNorm(V, 3, 4, 16, n_layer=2, bn_momentum=0.1),
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors this small gain nothing from threads, and on a busy machine two threads can stall a step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_f64(name: str, seed: int = 0) -> nn.Module:
    """The model in float64 with every parameter and BatchNorm running stat random (the init's zeros and ones
    would hide a missing bias, gain or running-stat term)."""
    torch.manual_seed(seed)
    model = MODELS[name]().double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return model


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, 3), generator=g), torch.randint(0, V, (B,), generator=g)


def assert_same_state(manual: nn.Module, auto: nn.Module) -> None:
    """Every .grad and every buffer (running mean/var, num_batches_tracked) of the two copies agree."""
    for (name, p), q in zip(manual.named_parameters(), auto.parameters(), strict=True):
        assert p.grad is not None and p.grad.abs().max() > 1e-3, f"{name}: no gradient to compare"
        assert (p.grad - q.grad).abs().max() <= TOL, f"d{name}: {(p.grad - q.grad).abs().max():.2e}"
    for (name, a), b in zip(manual.named_buffers(), auto.buffers(), strict=True):
        assert (a.double() - b.double()).abs().max() <= TOL, name


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("no_autograd", [torch.no_grad, torch.inference_mode])  # the one-step and multi-step paths'
def test_every_gradient_and_running_stat_is_autograds(name, train, no_autograd):
    auto = model_f64(name).train(train)
    manual = copy.deepcopy(auto)
    x, y = batch()
    loss = F.cross_entropy(auto(x), y)
    loss.backward()
    with no_autograd():
        manual_loss = manual.loss_and_grad(x, y)
    assert manual_loss.dim() == 0 and not manual_loss.requires_grad
    assert abs(manual_loss - loss) <= TOL
    assert_same_state(manual, auto)
    if name.startswith("mlp_batchnorm"):  # training moved the running stats, eval left them alone
        moved = [bool((a != b).any()) for a, b in zip(manual.buffers(), model_f64(name).buffers(), strict=True)]
        assert all(moved) if train else not any(moved)


@pytest.mark.parametrize("name", ["mlp_direct", "mlp_batchnorm_2"])
def test_calls_accumulate_scaled_gradients_like_backward(name):
    auto = model_f64(name).train()
    manual = copy.deepcopy(auto)
    for seed, scale in ((1, 0.5), (2, 3.0)):
        x, y = batch(seed)
        (scale * F.cross_entropy(auto(x), y)).backward()
        with torch.no_grad():
            manual.loss_and_grad(x, y, scale=scale)
    assert_same_state(manual, auto)


@pytest.mark.parametrize("name", ["mlp", "mlp_batchnorm_1"])
def test_autograd_left_on_is_refused(name):
    model, untouched = model_f64(name), model_f64(name)
    with pytest.raises(RuntimeError, match=r"derives the gradients itself: call it under torch.no_grad\(\)"):
        model.loss_and_grad(*batch())
    assert all(p.grad is None for p in model.parameters())
    assert all(a.equal(b) for a, b in zip(model.buffers(), untouched.buffers(), strict=True))  # BatchNorm's stats too


@pytest.mark.parametrize("name", ["mlp", "mlp_batchnorm_1"])
def test_float32_matches_autograd_too(name):
    auto = model_f64(name).float()
    manual = copy.deepcopy(auto)
    x, y = batch()
    loss = F.cross_entropy(auto(x), y)
    loss.backward()
    with torch.no_grad():
        assert abs(manual.loss_and_grad(x, y) - loss) < 1e-5
    for p, q in zip(manual.parameters(), auto.parameters(), strict=True):
        assert p.grad.dtype == torch.float32 and torch.allclose(p.grad, q.grad, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["mlp_direct", "mlp_batchnorm_2"])
def test_cuda_matches_cpu(name):
    cpu = model_f64(name)
    gpu = copy.deepcopy(cpu).cuda()
    x, y = batch()
    with torch.no_grad():
        assert abs(gpu.loss_and_grad(x.cuda(), y.cuda()).cpu() - cpu.loss_and_grad(x, y)) <= TOL
    for p, q in zip(gpu.parameters(), cpu.parameters(), strict=True):
        assert (p.grad.cpu() - q.grad).abs().max() <= TOL


@pytest.mark.parametrize("name", ["mlp", "mlp_batchnorm"])
def test_the_knob_is_checked_by_the_schema_and_stored(name):
    config = {"name": name, "block_size": 3, "emb_dim": 4, "hidden": 16}
    assert check_model(config).backward == "autograd"  # the default
    assert check_model({**config, "backward": "manual"}).backward == "manual"
    assert build_model({**config, "backward": "manual"}, V).backward == "manual"
    with pytest.raises(ConfigError, match="backward"):
        check_model({**config, "backward": "nope"})


@pytest.mark.parametrize("model", ["mlp", "mlp_batchnorm"])
@pytest.mark.parametrize("path", ["steps_per_call=100", pytest.param("steps_per_call=1", marks=pytest.mark.slow)])
def test_a_manual_run_follows_the_autograd_run(names_path, tmp_path, model, path):
    """On either training path, with the same clipping and schedule, model.backward=manual trains the run autograd
    trains: the same val loss to float noise."""
    import json

    from hydra import compose, initialize_config_dir

    from makemore.resolvers import register_resolvers
    from makemore.training.train import train

    from .conftest import REPO

    losses = {}
    for backward in ("autograd", "manual"):
        register_resolvers()
        overrides = [
            f"data.path={names_path}",
            f"model={model}",
            f"model.backward={backward}",
            path,
            "hidden=32",
            "trainer.max_steps=300",
            "val_every=300",
            "grad_clip=5.0",
            "print_config=false",
            f"run_dir={tmp_path / backward}",
            "~callbacks.embedding_plot",
            "~callbacks.sample_text",
        ]
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            train(compose("train", overrides=overrides))
        losses[backward] = json.loads((tmp_path / backward / "metrics.json").read_text())["val_loss"]
    assert losses["manual"] == pytest.approx(losses["autograd"], abs=1e-4)
