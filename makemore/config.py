"""The composed config at the door: checked (makemore.schema, the trainer's arguments, checkpoint paths) before
the run dir exists, and shown as a tree."""

import inspect
import math
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from makemore.errors import ConfigError, exit_with

NOT_MAKEMORES = ("hydra", "run_dir", "trainer", "logger", "callbacks")  # Hydra's and Lightning's (trainer: plan.py)


def validate_config(cfg: DictConfig) -> None:
    """Refuse out-of-range values with the key's name and allowed range (makemore.schema), before data is read."""
    import torch

    from makemore import schema
    from makemore.models import build_model, hidden_matrices

    values = {key: _plain(cfg, key) for key in cfg if key not in NOT_MAKEMORES}
    schema.check(schema.TrainConfig, values)
    check_trainer_args(trainer_settings(cfg))  # before the schedule: max_steps=-1 makes its milestones 0
    schema.check_model(values["model"])
    schema.check_optimizer(values["optimizer"])
    schema.check_scheduler(values["scheduler"])
    with torch.random.fork_rng(devices=[]):  # the model constructor's own rules (heads divide emb_dim ...)
        model = build_model(values["model"], vocab_size=2)
    if values["optimizer"]["name"] == "muon" and not hidden_matrices(model):
        raise ConfigError(
            f"optimizer=muon is for hidden layers' weight matrices, and model={values['model']['name']} has none; "
            "use optimizer=adamw"
        )
    if values["model"].get("block_size", cfg.data.block_size) != cfg.data.block_size:
        raise ConfigError(
            f"model.block_size={values['model']['block_size']} differs from data.block_size={cfg.data.block_size}; "
            "set the top-level block_size=N to change both"
        )
    _check_checkpoint_paths(cfg)


def validate_job(cfg: DictConfig) -> None:
    """A sweep's job is checked in its task, with its own overrides, so that a bad one is a failed row of the
    sweep; a single run was checked by CheckConfigFirst before its run dir existed."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        validate_config(cfg)


def trainer_settings(cfg: DictConfig) -> dict[str, Any]:
    """cfg.trainer as plain values; default_root_dir (the run dir, which Hydra knows only once the run starts)
    stays unresolved."""
    trainer = cfg.trainer
    return {
        key: OmegaConf.to_container(trainer, resolve=False)[key] if key == "default_root_dir" else _plain(trainer, key)
        for key in trainer
    }


def _plain(node: DictConfig, key: str) -> Any:
    value = node[key]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _tool_options(cfg: DictConfig) -> dict[str, Any]:
    options = {key: _plain(cfg, key) for key in cfg if key not in ("hydra", "ckpt")}
    return options | {"ckpt": None if OmegaConf.is_missing(cfg, "ckpt") else _plain(cfg, "ckpt")}


def check_sample_options(cfg: DictConfig) -> None:
    """scripts/sample.py's options, each with its allowed range, before any checkpoint is read."""
    from makemore import schema

    schema.check(schema.SampleOptions, _tool_options(cfg))


def check_eval_options(cfg: DictConfig) -> None:
    """scripts/eval.py's options, each with its allowed range, before any checkpoint is read."""
    from makemore import schema

    schema.check(schema.EvalOptions, _tool_options(cfg))


def _check_checkpoint_paths(cfg: DictConfig) -> None:
    if cfg.get("resume") and cfg.get("ckpt_path"):
        raise ConfigError("pass either resume=<run dir> or ckpt_path=<file.ckpt>, not both")
    if cfg.get("resume"):
        last = Path(cfg.resume) / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise ConfigError(
                f"resume={cfg.resume}: no {last} (is it a run dir, and did the run get to its first checkpoint?); "
                "pass a run directory written by scripts/train.py, or start the run afresh"
            )
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path}: no such file; pass a .ckpt file such as <run dir>/checkpoints/last.ckpt"
        )


class CheckConfigFirst(Callback):
    """Hydra creates the run dir before the task starts; this runs before that, so a bad config leaves
    nothing behind, and an output dir that can't be written is one clear line, not a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_config(config)
            if config.trainer.get("fast_dev_run") and not _overridden(config, "hydra.run.dir"):
                with open_dict(config):  # Lightning's fast_dev_run saves nothing: nor does it leave a run dir here
                    config.hydra.run.dir = str(Path(tempfile.gettempdir()) / "makemore-fast-dev-run" / time_stamp())
            _make_output_dir(config.hydra.run.dir)
        except ConfigError as e:
            exit_with(e)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _make_output_dir(config.hydra.sweep.dir)
        except ConfigError as e:
            exit_with(e)


def _overridden(config: DictConfig, key: str) -> bool:
    return any(o.lstrip("+").split("=")[0] == key for o in config.hydra.overrides.task)


def time_stamp() -> str:
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")


def _make_output_dir(path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the output directory {path}: {e.strerror}; pass a writable one with hydra.run.dir=... "
            "(or hydra.sweep.dir=... for -m)"
        ) from None


# Trainer arguments makemore sets itself or cannot honour, each with what to use instead.
REFUSED = {
    "logger": "choose loggers with logger=tensorboard|csv|mlflow|wandb|many, or logger=null for none",
    "callbacks": "add one with +callbacks.NAME._target_=lightning.pytorch.callbacks.CLASS (+callbacks.NAME.ARG=...)",
    "plugins": "makemore's checkpoint writer is its only plugin; precision is trainer.precision",
    "use_distributed_sampler": "keep it false: the data module shares val/test out to the processes itself",
    "reload_dataloaders_every_n_epochs": "keep it 0: every step draws a fresh random minibatch already",
    "limit_test_batches": "makemore scores the whole test split after training (metrics.json test_loss); "
    "scripts/eval.py scores any split of a checkpoint",
    "limit_predict_batches": "makemore does not predict; use scripts/sample.py",
    "barebones": "makemore's results need its checkpoints and loss logs; for a bare run pass logger=null "
    "trainer.enable_progress_bar=false trainer.enable_checkpointing=false",
    "model_registry": "this machine has no network; checkpoints are in <run dir>/checkpoints",
}


_DEFAULTS = {  # a refused argument may keep Lightning's (or makemore's) own value
    "use_distributed_sampler": False,
    "reload_dataloaders_every_n_epochs": 0,
    "limit_test_batches": None,
    "limit_predict_batches": None,
    "barebones": False,
    "model_registry": None,
    "plugins": None,
}


PRECISIONS = ("32-true", "32", "bf16-mixed")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _batches(value: object) -> bool:
    """Lightning's limit_*_batches / overfit_batches: a whole number of batches or a fraction in [0, 1]."""
    return _whole(value, 0) or (isinstance(value, float) and 0.0 <= value <= 1.0)


def check_trainer_args(trainer: Mapping[str, Any]) -> None:
    """Refuse, in one line naming the equivalent, what Lightning would reject with a traceback or what makemore
    cannot honour; everything else goes to Lightning's Trainer as given."""
    arguments = set(_trainer_arguments())
    for key, value in trainer.items():
        if key == "_target_":
            continue
        if key not in arguments:
            raise ConfigError(
                f"trainer.{key} is not an argument of Lightning's Trainer (see lightning.pytorch.Trainer)"
            )
        if key in REFUSED and value != _DEFAULTS.get(key):
            raise ConfigError(f"trainer.{key}={value!r} is not used here: {REFUSED[key]}")
    get = trainer.get
    rules = [
        ("max_steps", _whole(get("max_steps", -1), -1), "a whole number of optimizer steps, or -1 for no limit"),
        ("max_epochs", get("max_epochs") is None or _whole(get("max_epochs"), -1), "a whole number, -1 or null"),
        ("min_steps", get("min_steps") is None or _whole(get("min_steps"), 0), "a whole number >= 0 or null"),
        ("min_epochs", get("min_epochs") is None or _whole(get("min_epochs"), 0), "a whole number >= 0 or null"),
        ("log_every_n_steps", _whole(get("log_every_n_steps", 50), 0), "a whole number of steps >= 0"),
        ("accumulate_grad_batches", _whole(get("accumulate_grad_batches", 1), 1), "a whole number >= 1"),
        ("num_sanity_val_steps", _whole(get("num_sanity_val_steps", 2), -1), "a whole number >= -1"),
        (
            "limit_train_batches",
            get("limit_train_batches") is None or _batches(get("limit_train_batches")),
            "a number of minibatches or a fraction of an epoch in [0, 1]",
        ),
        (
            "limit_val_batches",
            get("limit_val_batches") is None or _batches(get("limit_val_batches")),
            "a number of validation batches or a fraction of the split in [0, 1]",
        ),
        ("overfit_batches", _batches(get("overfit_batches", 0.0)), "a number of minibatches or a fraction in [0, 1]"),
        (
            "check_val_every_n_epoch",
            get("check_val_every_n_epoch") is None or _whole(get("check_val_every_n_epoch"), 1),
            "a whole number of epochs >= 1 or null",
        ),
        (
            "gradient_clip_val",
            get("gradient_clip_val") is None or (_number(get("gradient_clip_val")) and get("gradient_clip_val") >= 0),
            "a number >= 0 or null",
        ),
        ("gradient_clip_algorithm", get("gradient_clip_algorithm") in (None, "norm", "value"), "norm, value or null"),
        (
            "fast_dev_run",
            isinstance(get("fast_dev_run", False), bool) or _whole(get("fast_dev_run"), 0),
            "true, false or a number of batches",
        ),
    ]
    for flag in ("enable_checkpointing", "enable_progress_bar", "enable_model_summary", "detect_anomaly"):
        rules.append((flag, get(flag) is None or isinstance(get(flag), bool), "true or false"))
    precision = str(get("precision") or "32-true")
    if precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} is not supported: use 32-true or bf16-mixed (float16 needs loss "
            "scaling, which the multi-step path does not do)"
        )
    for key, ok, allowed in rules:
        if not ok:
            raise ConfigError(f"trainer.{key} must be {allowed}, got {get(key)!r}")
    interval = get("val_check_interval")
    if not (interval is None or _whole(interval, 1) or (isinstance(interval, float) and 0.0 < interval <= 1.0)):
        raise ConfigError(
            "trainer.val_check_interval must be a whole number of optimizer steps >= 1 (val_every=N sets it too) "
            f"or a fraction of an epoch in (0, 1], got {interval!r}"
        )
    if get("max_steps", -1) == -1 and get("max_epochs") in (None, -1) and get("max_time") is None:
        raise ConfigError("trainer.max_steps=-1 and trainer.max_epochs=-1 would train forever: set one of them")


def _trainer_arguments() -> list[str]:
    import lightning as L

    return [name for name in inspect.signature(L.Trainer.__init__).parameters if name != "self"]


def trainer_kwargs(trainer: Mapping[str, Any]) -> dict[str, Any]:
    """cfg.trainer as Lightning's Trainer takes it: a float val_check_interval is a fraction of an epoch, which
    Lightning counts per epoch (check_val_every_n_epoch 1, its default; makemore's null counts steps across
    epochs, which a whole-number interval needs when it is longer than an epoch)."""
    kwargs = {k: v for k, v in trainer.items() if k != "_target_"}
    if isinstance(kwargs.get("val_check_interval"), float) and kwargs.get("check_val_every_n_epoch") is None:
        kwargs["check_val_every_n_epoch"] = 1
    return kwargs
