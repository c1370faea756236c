"""The multi-step path steps the torch optimizer itself, k steps per Lightning call, and tells Lightning's loop
through private counters (makemore.training.plan.LoopPlan.advance: the manual-optimization step counter, the
batch progress, `_batches_that_stepped`), asks it whether a validation follows (`_should_check_val_fx`) and reads
ModelCheckpoint's step interval. It also steps the optimizer under torch's per-call wrappers
(makemore.optim.unwrapped_step). These tests guard those contracts: if a Lightning release renames a
counter or changes what it means, they fail loudly instead of training the wrong number of steps, validating,
logging or decaying at the wrong step, or resuming elsewhere."""

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.models import build_model
from makemore.optim import build_optimizer, build_scheduler, unwrapped_step
from makemore.resolvers import register_resolvers
from makemore.training.train import train

from .conftest import REPO, tensorboard_dir

# 37 steps (not a multiple of the 5 steps per call), decay at step 18, lr logged after every step.
RUN = ["trainer.max_steps=37", "val_every=10", "log_every=1", "ckpt_every=5", "steps_per_call=5", "hidden=16"]


def run(names_path: Path, run_dir: Path, *overrides: str) -> dict:
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.path={names_path}", *RUN, f"run_dir={run_dir}", *overrides])
    train(cfg)
    return json.loads((run_dir / "metrics.json").read_text())


def test_global_step_the_decay_step_and_resume_count_optimizer_steps(names_path, tmp_path):
    metrics = run(names_path, tmp_path / "full")
    assert metrics["steps"] == 37  # global_step == max_steps: every optimizer step counted once
    events = EventAccumulator(str(tensorboard_dir(tmp_path / "full")))
    events.Reload()
    lr = {e.step: e.value for e in events.Scalars("lr")}
    assert sorted(lr) == list(range(37))  # one log per optimizer step, on Lightning's axis (steps before it)
    assert {s for s, v in lr.items() if v < 0.05} == set(range(18, 37))  # decayed after exactly 18 = 0.5 x 37 steps
    last = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 37

    # A run stopped at step 30 (same schedule), continued to 37: exactly the 7 remaining steps, the same result.
    first = run(names_path, tmp_path / "first", "trainer.max_steps=30", "scheduler.milestones=[18]")
    assert first["steps"] == 30
    last_of_first = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = run(names_path, tmp_path / "resumed", "scheduler.milestones=[18]", f"ckpt_path={last_of_first}")
    assert resumed["resumed_from_step"] == 30 and resumed["steps"] == 37
    final = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(final[k], last["state_dict"][k]) for k in last["state_dict"])


@pytest.mark.parametrize("settings", [{"name": "sgd", "lr": 0.1}, {"name": "adamw", "lr": 0.01, "fused": True}])
def test_the_unwrapped_optimizer_step_is_torchs_step(settings):
    """unwrapped_step reaches under torch's per-call wrappers (a private layout): it must take exactly the
    step optimizer.step() takes, keep the scheduler quiet, and give way to registered step hooks."""

    def trained(step_of) -> list[torch.Tensor]:
        model = build_model({"name": "mlp", "block_size": 3, "emb_dim": 4, "hidden": 8}, 27)
        optimizer = build_optimizer({**settings, "weight_decay": 0.01}, model)
        scheduler = build_scheduler({"name": "cosine", "total_steps": 5, "warmup_steps": 2}, optimizer)
        step = step_of(optimizer)
        x, y = torch.randint(0, 27, (16, 3), generator=torch.Generator().manual_seed(0)), torch.arange(16) % 27
        for _ in range(5):
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            step()
            scheduler.step()
        return [p.detach().clone() for p in model.parameters()]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unwrapped = trained(unwrapped_step)
    assert not [w for w in caught if "optimizer.step()" in str(w.message)]  # "lr_scheduler.step() before ..."
    assert all(torch.equal(a, b) for a, b in zip(unwrapped, trained(lambda o: o.step), strict=True))

    optimizer = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    assert unwrapped_step(optimizer).__func__ is not type(optimizer).step  # the unwrapped path is taken
    calls = []
    optimizer.register_step_post_hook(lambda *_: calls.append(1))
    optimizer.param_groups[0]["params"][0].grad = torch.ones(2)
    unwrapped_step(optimizer)()
    assert calls == [1]  # with a hook registered, the wrapped step runs it


def test_the_private_lightning_attributes_the_plan_uses_are_there():
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    loop = trainer.fit_loop.epoch_loop
    assert loop.manual_optimization.optim_step_progress.total.completed == 0
    assert loop.batch_progress.current.ready == 0 and loop.batch_progress.total.ready == 0
    assert loop._batches_that_stepped == 0
    assert callable(loop._should_check_val_fx) and hasattr(trainer.fit_loop, "_data_fetcher")
    checkpoint = ModelCheckpoint(every_n_train_steps=30, train_time_interval=None)
    assert checkpoint._every_n_train_steps == 30 and checkpoint._train_time_interval is None


def test_lightnings_counters_count_every_step_of_a_call(names_path, tmp_path):
    """After a multi-step run, Lightning's own batch and logging counters hold optimizer steps, not calls."""
    from makemore.training.train import build_module, build_trainer, prepare_datamodule

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.path={names_path}", *RUN, f"run_dir={tmp_path}", "batch_size=8192"])
    tmp_path.mkdir(exist_ok=True)
    datamodule = prepare_datamodule(cfg)  # 182,625 / 8192: epochs of 23 minibatches
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, module, datamodule)
    trainer.fit(module, datamodule=datamodule)
    loop = trainer.fit_loop.epoch_loop
    assert trainer.global_step == loop.batch_progress.total.completed == loop._batches_that_stepped == 37
    assert loop.batch_progress.current.completed == 37 - 23  # 14 minibatches into the second epoch
    assert trainer.current_epoch == 2  # Lightning counts the stopped epoch as done at the end of fit
