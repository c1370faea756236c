"""Config helpers: resolvers used by conf/*.yaml and validation that runs before any work is done."""

import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from makemore.cli import exit_with
from makemore.errors import ConfigError


def register_resolvers() -> None:
    """`${fraction_of:0.5,${trainer.max_steps}}` -> 100000 and `${floordiv:a,b}`, for derived step counts."""
    if not OmegaConf.has_resolver("fraction_of"):
        OmegaConf.register_new_resolver("fraction_of", lambda frac, total: int(float(frac) * int(total)))
    if not OmegaConf.has_resolver("floordiv"):
        OmegaConf.register_new_resolver("floordiv", lambda a, b: int(a) // int(b))


def _positive_int(value: object, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")


def validate_config(cfg: DictConfig) -> None:
    """Refuse out-of-range values with the key's name and allowed range, before data is read."""
    sizes = ("block_size", "emb_dim", "hidden", "batch_size", "val_every", "log_every", "steps_per_call", "ckpt_every")
    for key in sizes:
        _positive_int(OmegaConf.select(cfg, key), key)
    for key in ("data.block_size", "data.batch_size", "trainer.max_steps"):
        _positive_int(OmegaConf.select(cfg, key), key)
    for key in ("block_size", "emb_dim", "hidden"):
        if key in cfg.model:
            _positive_int(cfg.model[key], f"model.{key}")
    if cfg.model.get("block_size", cfg.data.block_size) != cfg.data.block_size:
        raise ConfigError(
            f"model.block_size={cfg.model.block_size} differs from data.block_size={cfg.data.block_size}; "
            "set the top-level block_size=N to change both"
        )
    if cfg.val_every > cfg.trainer.max_steps:
        raise ConfigError(
            f"val_every={cfg.val_every} is more than trainer.max_steps={cfg.trainer.max_steps}: "
            "the run would validate only at its last step; lower val_every"
        )
    k = cfg.steps_per_call
    for key in ("val_every", "log_every", "ckpt_every"):
        if cfg[key] % k:
            raise ConfigError(f"{key}={cfg[key]} must be a multiple of steps_per_call={k}")
    if "ddp" in str(cfg.trainer.get("strategy", "")) and k != 1:
        raise ConfigError(
            f"trainer=ddp needs steps_per_call=1 (got {k}): DDP averages gradients once per forward; "
            "add steps_per_call=1"
        )
    split = list(cfg.data.split)
    if len(split) != 3 or any(f <= 0 for f in split) or not math.isclose(sum(split), 1.0):
        raise ConfigError(f"data.split must be three positive fractions (train, val, test) summing to 1, got {split}")
    _check_checkpoint_paths(cfg)


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
        return Path(cfg.resume) / "checkpoints" / "last.ckpt"
    return Path(cfg.ckpt_path) if cfg.get("ckpt_path") else None


class CheckConfigFirst(Callback):
    """Hydra creates the run dir before the task starts; this runs before that, so a bad config leaves
    nothing behind, and an output dir that can't be written is one clear line, not a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_config(config)
            _make_output_dir(config.hydra.run.dir)
        except ConfigError as e:
            exit_with(e)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _make_output_dir(config.hydra.sweep.dir)
        except ConfigError as e:
            exit_with(e)


def _make_output_dir(path: str) -> None:
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the output directory {path}: {e.strerror}; pass a writable one with hydra.run.dir=... "
            "(or hydra.sweep.dir=... for -m)"
        ) from None
