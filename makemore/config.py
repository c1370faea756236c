"""Config helpers: resolvers used by conf/*.yaml and validation that runs before any work is done."""

import json
import math
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf, open_dict

from makemore.cli import exit_with
from makemore.errors import ConfigError


def run_dir_of(name: str | None, date: str, time: str) -> str:
    """<date>/<time>, or <name>/<date>_<time> for a named run (under outputs_dir): named runs gather together."""
    return f"{name}/{date}_{time}" if name else f"{date}/{time}"


def register_resolvers() -> None:
    """Resolvers for derived values: `${fraction_of:0.5,${trainer.max_steps}}` -> 100000 (where the step decay
    comes), the run's label and dir, tags, and absolute paths."""
    resolvers = {
        "fraction_of": lambda frac, total: int(float(frac) * int(total)),
        "run_label": lambda *, _root_: run_label(_root_),
        "run_dir_of": run_dir_of,
        "tag_dict": lambda tags: {str(tag): "" for tag in tags or []},
        "sqlite_uri": lambda path: f"sqlite:///{to_absolute_path(path)}",
        "abspath": to_absolute_path,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def _positive_int(value: object, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")


def validate_config(cfg: DictConfig) -> None:
    """Refuse out-of-range values with the key's name and allowed range, before data is read."""
    import torch

    from makemore.models import build_model
    from makemore.training.optim import check_optimizer_config, check_scheduler_config
    from makemore.training.plan import check_trainer_args

    for key in ("block_size", "emb_dim", "hidden", "batch_size", "val_every", "steps_per_call", "ckpt_every"):
        _positive_int(OmegaConf.select(cfg, key), key)
    if isinstance(cfg.log_every, bool) or not isinstance(cfg.log_every, int) or cfg.log_every < 0:
        raise ConfigError(f"log_every must be a whole number of steps >= 0 (0: never log), got {cfg.log_every!r}")
    for key in ("data.block_size", "data.batch_size"):
        _positive_int(OmegaConf.select(cfg, key), key)
    clip = cfg.get("grad_clip")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, int | float) or clip <= 0):
        raise ConfigError(f"grad_clip must be a positive number (the largest gradient norm) or null, got {clip!r}")
    check_trainer_args(trainer_settings(cfg))
    _check_run_knobs(cfg)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    with torch.random.fork_rng(devices=[]):  # its knobs, then its constructor's own rules (heads divide emb_dim ...)
        build_model(model, vocab_size=2)
    if model.get("block_size", cfg.data.block_size) != cfg.data.block_size:
        raise ConfigError(
            f"model.block_size={model['block_size']} differs from data.block_size={cfg.data.block_size}; "
            "set the top-level block_size=N to change both"
        )
    check_optimizer_config(OmegaConf.to_container(cfg.optimizer, resolve=True))
    check_scheduler_config(OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None)
    split = list(cfg.data.split)
    if len(split) != 3 or any(f <= 0 for f in split) or not math.isclose(sum(split), 1.0):
        raise ConfigError(f"data.split must be three positive fractions (train, val, test) summing to 1, got {split}")
    _check_checkpoint_paths(cfg)


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


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_run_knobs(cfg: DictConfig) -> None:
    """The top-level knobs of train.yaml that are not sizes: each with its allowed range."""
    _positive_int(cfg.sample.num_samples, "sample.num_samples")
    _positive_int(cfg.sample.max_len, "sample.max_len")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ConfigError(f"seed must be an integer, got {cfg.seed!r}")
    if not (_number(cfg.decay_at) and 0 < cfg.decay_at <= 1):
        raise ConfigError(f"decay_at must be a fraction of the run in (0, 1], got {cfg.decay_at!r}")
    if not (_number(cfg.divergence_factor) and cfg.divergence_factor > 1):
        raise ConfigError(f"divergence_factor must be a number > 1 (x ln V), got {cfg.divergence_factor!r}")
    if cfg.threads is not None:
        _positive_int(cfg.threads, "threads")
    if not (_number(cfg.one_thread_below) and cfg.one_thread_below >= 0):
        raise ConfigError(f"one_thread_below must be a number >= 0, got {cfg.one_thread_below!r}")
    if cfg.matmul_precision not in ("highest", "high", "medium"):
        raise ConfigError(f"matmul_precision must be highest, high or medium, got {cfg.matmul_precision!r}")


def _required_checkpoint(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "ckpt") or not cfg.ckpt:
        raise ConfigError("ckpt is required: pass ckpt=<run dir> or ckpt=<file.ckpt>")
    if not isinstance(cfg.ckpt, str):
        raise ConfigError(f"ckpt must be a path (a run dir or a .ckpt file), got {cfg.ckpt!r}")


def check_sample_options(cfg: DictConfig) -> None:
    """scripts/sample.py's options, each with its allowed range, before any checkpoint is read."""
    _required_checkpoint(cfg)
    _positive_int(cfg.n, "n")
    _positive_int(cfg.max_len, "max_len")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise ConfigError(f"seed must be an integer, got {cfg.seed!r}")
    t = cfg.temperature
    if isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0 or math.isinf(t):
        raise ConfigError(f"temperature must be a number > 0, or 0 for greedy decoding, got {t!r}")
    if cfg.top_k is not None:
        _positive_int(cfg.top_k, "top_k")
    if not isinstance(cfg.prefix, str | int) or isinstance(cfg.prefix, bool):
        raise ConfigError(f"prefix must be text, got {cfg.prefix!r}")
    if not isinstance(cfg.mark_new, bool):
        raise ConfigError(f"mark_new must be true or false, got {cfg.mark_new!r}")


def check_lr_find_options(cfg: DictConfig) -> None:
    """scripts/lr_find.py's options (lr_find.*), each with its allowed range, before data is read."""
    settings = cfg.lr_find
    low, high = settings.min_lr, settings.max_lr
    for key, value in (("min_lr", low), ("max_lr", high)):
        if not (_number(value) and value > 0):
            raise ConfigError(f"lr_find.{key} must be a positive number, got {value!r}")
    if not low < high:
        raise ConfigError(f"lr_find.min_lr={low} must be below lr_find.max_lr={high}")
    _positive_int(settings.num_training, "lr_find.num_training")
    n, skip = settings.num_training, settings.skip_begin
    if n < 10:
        raise ConfigError(f"lr_find.num_training must be at least 10 sweep steps, got {n}")
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= n - 3:
        raise ConfigError(
            f"lr_find.skip_begin must be a whole number from 0 to num_training - 3 = {n - 3} (the suggestion needs "
            f"points after it), got {skip!r}"
        )
    threshold = settings.early_stop_threshold
    if threshold is not None and not (_number(threshold) and threshold > 1):
        raise ConfigError(f"lr_find.early_stop_threshold must be a number > 1, or null, got {threshold!r}")
    if not isinstance(settings.apply, bool):
        raise ConfigError(f"lr_find.apply must be true or false, got {settings.apply!r}")


def check_eval_options(cfg: DictConfig) -> None:
    """scripts/eval.py's options, each with its allowed range, before any checkpoint is read."""
    _required_checkpoint(cfg)
    _positive_int(cfg.eval_batch_size, "eval_batch_size")
    for key in ("data.path", "out"):
        value = OmegaConf.select(cfg, key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key} must be a file path or null, got {value!r}")


# Overrides that do not tell runs apart: where things are read and written, and how a run continues.
_UNNAMING_KEYS = ("hydra", "data.path", "resume", "ckpt_path", "name", "tags", "threads")


def run_label(cfg: DictConfig) -> str:
    """What TensorBoard, MLflow and W&B call this run: `name=` if given, else the overrides that made it
    (`experiment=seed_11897`, `hidden=300,emb_dim=10`), else the model's name. A sweep's job is called by
    the overrides that tell it apart from the other jobs (after the name, if given)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    overrides = [o.lstrip("+~") for o in overrides if not o.lstrip("+~").split("=")[0].startswith(_UNNAMING_KEYS)]
    swept = _swept_keys()
    if swept is not None:
        job = ",".join(o for o in overrides if o.split("=")[0] in swept)
        label = f"{cfg.name}:{job}" if cfg.get("name") else job
    else:
        label = str(cfg.name) if cfg.get("name") else ",".join(overrides)
    return (label or str(cfg.model.name)).replace("/", "_").replace("\\", "_")[:120]


def _swept_keys() -> set[str] | None:
    """In a multirun job, the keys that vary between the sweep's jobs; else None."""
    from makemore.sweep import SWEPT_KEYS_FILE

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    path = Path(HydraConfig.get().sweep.dir) / SWEPT_KEYS_FILE
    return set(json.loads(path.read_text())) if path.is_file() else None


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
            if config.hydra.job.name == "lr_find":  # scripts/lr_find.py: its own options too
                check_lr_find_options(config)
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
