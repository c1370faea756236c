from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from makemore.config import validate_config
from makemore.errors import ConfigError
from makemore.optim import resolve_schedule
from makemore.resolvers import register_resolvers
from makemore.training.plan import LoopPlan

from .conftest import REPO


def make_cfg(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_users_command_composes():
    cfg = make_cfg("model.hidden=300", "emb_dim=10")
    assert cfg.model.hidden == 300 and cfg.model.emb_dim == 10
    validate_config(cfg)


def test_top_level_knobs_reach_the_groups():
    cfg = make_cfg("block_size=5", "hidden=64", "batch_size=128")
    assert cfg.model.block_size == cfg.data.block_size == 5
    assert cfg.model.hidden == 64 and cfg.data.batch_size == 128


def test_defaults_are_the_seed_configuration():
    cfg = make_cfg()
    assert (cfg.block_size, cfg.emb_dim, cfg.hidden, cfg.batch_size) == (3, 10, 200, 32)
    assert cfg.trainer.max_steps == 200000 and cfg.optimizer.lr == 0.1
    assert resolve_schedule(OmegaConf.to_container(cfg.scheduler, resolve=True), 200000)["milestones"] == [100000]
    assert cfg.data.split_seed == 42 and list(cfg.data.split) == [0.8, 0.1, 0.1]


def test_decay_follows_the_runs_length():
    """The decay's milestone is decay_at of the steps the Trainer will take (max_steps, or max_epochs' steps)."""
    scheduler = OmegaConf.to_container(make_cfg("decay_at=0.25").scheduler, resolve=True)
    assert scheduler["milestones"] is None
    assert resolve_schedule(scheduler, 3000)["milestones"] == [750]
    with pytest.raises(ConfigError, match="needs the run's length"):
        resolve_schedule(scheduler, float("inf"))


def test_seed_presets():
    small = make_cfg("experiment=seed_3481")
    assert (small.emb_dim, small.hidden, small.model.init, small.optimizer.lr) == (2, 100, "randn", 0.01)
    assert small.trainer.max_steps == 10000 and small.scheduler.name == "constant"
    big = make_cfg("experiment=seed_11897")
    assert (big.emb_dim, big.hidden, big.model.init, big.trainer.max_steps) == (10, 200, "randn", 200000)
    assert big.scheduler.name == "step" and big.decay_at == 0.5


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_and_passes_the_door(name: str):
    validate_config(make_cfg(f"experiment={name}"))


def test_ensemble_member_is_best_with_less_regularization():
    best, member = make_cfg("experiment=best"), make_cfg("experiment=ensemble_member")
    assert (member.model.dropout, member.model.weight_dropout) == (0.3, 0.2)
    assert (best.model.dropout, best.model.weight_dropout) == (0.35, 0.3)
    for key in ("optimizer", "scheduler", "trainer", "data"):  # everything else is best's
        assert OmegaConf.to_container(member[key]) == OmegaConf.to_container(best[key]), key


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("block_size=0", "block_size must be a positive integer"),
        ("emb_dim=-1", "emb_dim must be a positive integer"),
        ("hidden=0", "hidden must be a positive integer"),
        ("batch_size=0", "batch_size must be a positive integer"),
        ("model.hidden=0", "model.hidden must be a positive integer"),
        ("model.block_size=4", "differs from data.block_size"),
        ("optimizer.lr=0", "optimizer.lr must be a positive number"),
        ("optimizer.name=adam", "optimizer.name='adam' is not an optimizer here"),
        ("scheduler.name=linear", "scheduler.name='linear' is not a schedule here"),
        ("data.split=[0.5,0.2,0.2]", "summing to 1"),
        ("threads=0", "threads must be a positive integer, got 0"),  # 0 was taken as "automatic"
        ("threads=-1", "threads must be a positive integer, got -1"),  # was a traceback
        ("sample.num_samples=-1", "sample.num_samples must be a positive integer"),  # a traceback after training
        ("sample.max_len=0", "sample.max_len must be a positive integer"),
        ("seed=abc", "seed must be an integer"),
        ("decay_at=1.5", r"decay_at must be a fraction of the run in \(0, 1\]"),  # was: never decays
        ("divergence_factor=0", "divergence_factor must be a number > 1"),
        ("one_thread_below=-1", "one_thread_below must be a number >= 0"),
        ("matmul_precision=low", "matmul_precision must be highest, high or medium"),
        # the model's own constructor rules, at the door instead of after the run dir and data
        ("model=transformer model.n_head=5", "transformer needs emb_dim divisible by n_head"),
        ("model=wavenet block_size=6", "wavenet needs block_size to be a power of 2"),
    ],
)
def test_out_of_range_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(make_cfg(*override.split()))


@pytest.mark.parametrize(
    ("settings", "must_end_at"),
    [
        ({}, [100, 5000, 5708, 10000, 11416]),  # the defaults: log 100, val 10000, ckpt 5000; epochs of 5708
        ({"per_epoch": 714, "val": 500, "log": 50}, [50, 500, 714, 1000, 1428, 1500]),
        ({"log": 7, "val": 150}, [7, 14, 150, 300]),  # odd intervals: shorter calls, every event exact
        ({"max_steps": 250, "val": 100, "log": 50}, [50, 100, 250]),
        ({"val": 300, "per_epoch_val": True, "per_epoch": 1000}, [300, 600, 900, 1000, 1300]),  # per epoch
    ],
)
def test_each_call_of_the_multi_step_path_ends_where_something_happens(settings, must_end_at):
    """The multi-step path takes up to steps_per_call steps per Lightning call, and a call ends at every step
    where Lightning or a callback acts: logs, validations (across epochs or within each), checkpoints, epochs."""
    trainer = SimpleNamespace(
        num_training_batches=settings.get("per_epoch", 5708),
        max_steps=settings.get("max_steps", 20000),
        log_every_n_steps=settings.get("log", 100),
        val_check_batch=settings.get("val", 10000),
        check_val_every_n_epoch=1 if settings.get("per_epoch_val") else None,
        callbacks=[SimpleNamespace(step_interval=5000)],
    )
    plan = LoopPlan(100, {}, [], None)
    plan.trainer, plan.total_steps = trainer, trainer.max_steps
    ends, total, in_epoch = [], 0, 0
    while total < trainer.max_steps:
        k = plan.next_call(total, in_epoch)
        assert 1 <= k <= 100
        total, in_epoch = total + k, in_epoch + k
        in_epoch %= trainer.num_training_batches
        ends.append(total)
    assert set(must_end_at) <= set(ends)
    assert ends[-1] == trainer.max_steps
    assert len(ends) < 2 * trainer.max_steps / min(100, trainer.log_every_n_steps)  # few calls: the point of it


GROUPS = [p for p in sorted((REPO / "conf").iterdir()) if p.is_dir() and p.name not in ("hydra", "local")]


@pytest.mark.parametrize(
    "override",
    [f"{group.name}={option.stem}" for group in GROUPS for option in sorted(group.glob("*.yaml"))],
)
def test_every_config_composes_and_passes_the_checks(override):
    """Every option of every group in conf/ (each experiment, trainer=gpu, ...) composes, resolves and is valid; the
    door constructs Lightning's Trainer, so trainer=gpu on a machine without one is refused there in one line."""
    cfg = make_cfg(override, "run_dir=/tmp/makemore-compose-test")
    OmegaConf.to_container(cfg, resolve=True)
    if override == "trainer=gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="Lightning refused the trainer settings: No supported gpu backend"):
            validate_config(cfg)
        return
    validate_config(cfg)


@pytest.mark.parametrize("name", ["sample", "eval"])
def test_the_tools_configs_compose(name):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name=name, overrides=["ckpt=some/run"])
    assert cfg.ckpt == "some/run"
