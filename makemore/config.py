"""The composed config at the door: checked (makemore.schema, the trainer's arguments, checkpoint paths) before
the run dir exists, and shown as a tree."""

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf, open_dict

from makemore.errors import ConfigError, exit_with

NOT_MAKEMORES = ("hydra", "run_dir", "trainer", "logger", "callbacks")  # Hydra's and Lightning's (trainer: plan.py)


def validate_config(cfg: DictConfig) -> None:
    """Refuse out-of-range values with the key's name and allowed range (makemore.schema), before data is read."""
    import torch

    from makemore import schema
    from makemore.models import build_model
    from makemore.training.optim import hidden_matrices
    from makemore.training.plan import check_trainer_args

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


TREE_SKIPPED = ("hydra", "callbacks", "lr_find", "sample")  # the run's parts only (all are in config_tree.txt)


def config_tree(cfg: DictConfig, skip: tuple[str, ...] = ()) -> Any:
    """The resolved config as a rich Tree: the top-level knobs, then one branch per group."""
    from rich.tree import Tree

    def plain(value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value) if isinstance(value, list | bool | None) else str(value)

    def grow(node: Tree, mapping: dict) -> None:
        for key, value in mapping.items():
            if isinstance(value, dict) and value:
                grow(node.add(f"[bold]{key}[/bold]"), value)
            else:
                node.add(f"{key}: {plain(value)}", highlight=False)

    values = OmegaConf.to_container(cfg, resolve=True)
    tree = Tree("config", guide_style="dim")
    tree.add(", ".join(f"{k}={plain(v)}" for k, v in values.items() if not isinstance(v, dict)), highlight=False)
    grow(tree, {k: v for k, v in values.items() if isinstance(v, dict) and k not in skip})
    return tree


def show_config(cfg: DictConfig, run_dir: Path) -> None:
    """Save the whole config as a tree in config_tree.txt and, unless print_config=false, print the run's parts."""
    from rich.console import Console

    with (run_dir / "config_tree.txt").open("w") as f:
        Console(file=f, width=120, color_system=None).print(config_tree(cfg))
    if cfg.get("print_config", True):
        Console(width=120).print(config_tree(cfg, skip=TREE_SKIPPED))


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


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint a run continues from: ckpt_path, resume's last.ckpt, or None for a fresh run."""
    if cfg.get("resume"):
        return Path(to_absolute_path(cfg.resume)) / "checkpoints" / "last.ckpt"
    return Path(to_absolute_path(cfg.ckpt_path)) if cfg.get("ckpt_path") else None


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
