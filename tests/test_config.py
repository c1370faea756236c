import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from makemore.config import register_resolvers, validate_config
from makemore.errors import ConfigError

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
    assert OmegaConf.to_container(cfg.scheduler, resolve=True)["milestones"] == [100000]
    assert cfg.data.split_seed == 42 and list(cfg.data.split) == [0.8, 0.1, 0.1]


def test_decay_follows_max_steps():
    cfg = make_cfg("trainer.max_steps=3000")
    assert OmegaConf.to_container(cfg.scheduler, resolve=True)["milestones"] == [1500]


def test_seed_presets():
    small = make_cfg("experiment=seed_3481")
    assert (small.emb_dim, small.hidden, small.model.init, small.optimizer.lr) == (2, 100, "randn", 0.01)
    assert small.trainer.max_steps == 10000 and small.scheduler.name == "constant"
    big = make_cfg("experiment=seed_11897")
    assert (big.emb_dim, big.hidden, big.model.init, big.trainer.max_steps) == (10, 200, "randn", 200000)
    assert OmegaConf.to_container(big.scheduler, resolve=True)["milestones"] == [100000]


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
    ("overrides", "steps_per_call", "val_check_interval"),
    [
        ([], 100, 100),  # the defaults: 200000 steps, val_every 10000
        (["trainer.max_steps=300"], 100, 3),  # shorter than val_every: one validation, at the end
        (["val_every=150"], 50, 3),  # gcd(150, 100, 5000) = 50
        (["log_every=7"], 1, 10000),  # nothing larger divides 7: slower, but exact
        (["trainer.max_steps=250", "val_every=100", "log_every=50"], 50, 2),
    ],
)
def test_any_positive_intervals_work_and_steps_per_call_follows_them(overrides, steps_per_call, val_check_interval):
    """Short runs and odd intervals are valid; the optimizer steps per Lightning call adapt to them."""
    cfg = make_cfg(*overrides)
    validate_config(cfg)
    assert cfg.data.steps_per_call == steps_per_call
    assert cfg.trainer.val_check_interval == val_check_interval


GROUPS = [p for p in sorted((REPO / "conf").iterdir()) if p.is_dir() and p.name not in ("hydra", "local")]


@pytest.mark.parametrize(
    "override",
    [f"{group.name}={option.stem}" for group in GROUPS for option in sorted(group.glob("*.yaml"))],
)
def test_every_config_composes_and_passes_the_checks(override):
    """Every option of every group in conf/ (each experiment, trainer=gpu, ...) composes, resolves and is valid."""
    cfg = make_cfg(override, "run_dir=/tmp/makemore-compose-test")
    OmegaConf.to_container(cfg, resolve=True)
    validate_config(cfg)


@pytest.mark.parametrize("name", ["sample", "eval"])
def test_the_tools_configs_compose(name):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name=name, overrides=["ckpt=some/run"])
    assert cfg.ckpt == "some/run"
