"""The composed config at the door, before the run dir exists: each value checked once, where it lands, in one line."""

import fcntl
import functools
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from makemore.console import exit_with, first_process
from makemore.errors import ConfigError

NOT_MAKEMORES = ("hydra", "run_dir", "trainer", "logger", "callbacks")  # Hydra's and Lightning's (the trainer: below)
# interpolated into the groups (model.hidden: ${hidden}): checked where they land, named in a refusal as typed
KNOBS = ("block_size", "emb_dim", "hidden", "batch_size", "val_every", "log_every", "grad_clip", "decay_at")
UNWRITABLE = "cannot create the output directory {}: {}; pass a writable one with hydra.run.dir=... (or "
UNWRITABLE += "hydra.sweep.dir=... for -m)"
BUSY = "another run (pid {}) is writing into {}: wait for it to end, or pass another hydra.{}.dir"


def validate_config(cfg: DictConfig) -> None:
    """Refuse a bad train config in one line before data is read (a sweep's job: in its task, a failed row)."""
    from makemore import schema

    plain = OmegaConf.masked_copy(cfg, [key for key in cfg if key not in ("hydra", "logger", "callbacks")])
    plain.run_dir = None  # Hydra's to say once the run starts
    raw, values = OmegaConf.to_container(plain), OmegaConf.to_container(plain, resolve=True)  # raw: `${hidden}`
    schema.check(schema.TrainConfig, {k: v for k, v in values.items() if k not in NOT_MAKEMORES + KNOBS}, raw=raw)
    trainer, scheduler, resume, ckpt = (values[k] for k in ("trainer", "scheduler", "resume", "ckpt_path"))
    if trainer.get("max_steps", -1) == -1 and trainer.get("max_epochs") in (None, -1) and not trainer.get("max_time"):
        raise ConfigError("trainer.max_steps=-1 and trainer.max_epochs=-1 would train forever: set one of them")
    if scheduler is not None:  # after the trainer's max_steps, before the rest: the schedule counts its steps
        schema.check(schema.SCHEDULES, scheduler, "scheduler", raw["scheduler"])
    low, high, n, skip = (values["lr_find"][k] for k in ("min_lr", "max_lr", "num_training", "skip_begin"))
    sched = scheduler or {}
    warmup, total, milestones = sched.get("warmup_steps", 0), sched.get("total_steps"), sched.get("milestones") or []
    if not low < high:
        raise ConfigError(f"lr_find.min_lr={low} must be below lr_find.max_lr={high}")
    if not 0 <= skip <= n - 3:
        raise ConfigError(
            f"lr_find.skip_begin must be a whole number from 0 to num_training - 3 = {n - 3} (the suggestion needs "
            f"points after it), got {skip!r}"
        )
    if not math.isclose(sum(split := values["data"]["split"]), 1.0):
        raise ConfigError(f"data.split must be {schema.SPLIT}, got {split}")
    if (block := values["model"].get("block_size", values["data"]["block_size"])) != values["data"]["block_size"]:
        raise ConfigError(
            f"model.block_size={block} differs from data.block_size={values['data']['block_size']}; set the "
            "top-level block_size=N to change both"
        )
    if any(m <= warmup for m in milestones):
        raise ConfigError(f"scheduler.milestones={milestones} must come after warmup_steps={warmup}")
    if total is not None and not warmup < total:
        raise ConfigError(f"scheduler.warmup_steps={warmup} must be below total_steps={total}")
    if resume and ckpt:
        raise ConfigError("pass either resume=<run dir> or ckpt_path=<file.ckpt>, not both")
    if resume and not (last := Path(resume) / "checkpoints" / "last.ckpt").is_file():
        raise ConfigError(
            f"resume={resume}: no {last} (is it a run dir, and did the run get to its first checkpoint?); pass a "
            "run directory written by scripts/train.py, or start the run afresh"
        )
    if ckpt and not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={ckpt}: no such file; pass a .ckpt file such as <run dir>/checkpoints/last.ckpt")
    schema.check_parts(values, raw)


def _check_tool_options(cfg: DictConfig, options: str) -> None:
    """scripts/sample.py's or eval.py's options, each with its range, before any checkpoint is read."""
    from makemore import schema

    values = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    if values.get("ckpt") in (None, "", "???", []):
        raise ConfigError("ckpt is required: pass ckpt=<run dir> or ckpt=<file.ckpt>")
    schema.check(getattr(schema, options), values)


check_sample_options = functools.partial(_check_tool_options, options="SampleOptions")
check_eval_options = functools.partial(_check_tool_options, options="EvalOptions")


class CheckConfigFirst(Callback):
    """Check the config before Hydra makes the run dir (a bad one leaves nothing); then claim the dir (_claim)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_config(config)
        except ConfigError as e:
            exit_with(e)
        _claim(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _claim(config, "sweep")


_held: dict[Path, Any] = {}  # run dir -> its open lock file, held while this process lives


def _claim(config: DictConfig, kind: str) -> None:
    """Create hydra.<kind>.dir (named: reused; default: the next free ..._N), locked for this process's life."""
    given = [o.lstrip("+~").split("=")[0] for o in [*config.hydra.overrides.task, *config.hydra.overrides.hydra]]
    if kind == "run" and config.trainer.get("fast_dev_run") and "hydra.run.dir" not in given:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")  # fast_dev_run saves nothing: a temporary dir
        with open_dict(config):
            config.hydra.run.dir = str(Path(tempfile.gettempdir()) / "makemore-fast-dev-run" / stamp)
    path = Path(config.hydra[kind].dir)
    try:
        if f"hydra.{kind}.dir" in given:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    path = path.with_name(f"{Path(config.hydra[kind].dir).name}_{n}")
            with open_dict(config):
                config.hydra[kind].dir = str(path)
        lock = (path / ".lock").open("a+") if first_process() else None  # data-parallel workers share the first's
    except OSError as e:
        exit_with(ConfigError(UNWRITABLE.format(path, e.strerror)))
    if lock is not None and path.resolve() not in _held:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            exit_with(ConfigError(BUSY.format(lock.read().strip() or "?", path, kind)))
        lock.truncate(0)
        print(os.getpid(), file=lock, flush=True)
        _held[path.resolve()] = lock
