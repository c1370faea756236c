"""The composed config at the door, before the run dir exists: each value checked once, where it lands (by the
schema of its part in makemore.schema, by the part's own constructor), and a refusal is one line."""

import fcntl
import functools
import inspect
import logging
import math
import os
import tempfile
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from makemore.errors import ConfigError, exit_with, first_process

NOT_MAKEMORES = ("hydra", "run_dir", "trainer", "logger", "callbacks")  # Hydra's and Lightning's (the trainer: below)
# interpolated into the groups (model.hidden: ${hidden}): checked where they land, named in a refusal as typed
KNOBS = ("block_size", "emb_dim", "hidden", "batch_size", "val_every", "log_every", "grad_clip", "decay_at")
PRECISIONS = ("32-true", "32", "bf16-mixed")
UNWRITABLE = "cannot create the output directory {}: {}; pass a writable one with hydra.run.dir=... (or "
UNWRITABLE += "hydra.sweep.dir=... for -m)"
# Trainer arguments makemore sets itself or cannot honour, with what to use instead (each may keep KEPT's value or null)
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
KEPT = {"use_distributed_sampler": False, "reload_dataloaders_every_n_epochs": 0, "barebones": False}


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
    if n < 10:
        raise ConfigError(f"lr_find.num_training must be at least 10 sweep steps, got {n}")
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
    check_parts(values, raw)


def check_parts(values: dict[str, Any], raw: dict[str, Any]) -> None:
    """The trainer, model and optimizer: by makemore's refusals and schemas, then by their own constructors."""
    import lightning.pytorch as pl
    import torch
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from makemore import schema
    from makemore.models import MODELS, build_model, hidden_matrices

    trainer, model, optimizer = trainer_kwargs(values["trainer"]), values["model"], values["optimizer"]
    if isinstance(trainer.get("profiler"), dict):  # a _target_: the run's Trainer builds it
        trainer.pop("profiler")
    for key, instead in REFUSED.items():
        if trainer.get(key, KEPT.get(key)) != KEPT.get(key):
            raise ConfigError(f"trainer.{key}={trainer[key]!r} is not used here: {instead}")
    if str(trainer.get("precision") or "32-true") not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={trainer['precision']} is not supported: use 32-true or bf16-mixed (float16 needs "
            "loss scaling, which the multi-step path does not do)"
        )
    schema.check(schema.signature_schema(pl.Trainer), trainer, "trainer", raw["trainer"])
    schema.check(MODELS, model, "model", raw["model"])
    schema.check(schema.OPTIMIZERS, optimizer, "optimizer", raw["optimizer"])
    with torch.random.fork_rng(devices=[]):
        built = build_model(model, vocab_size=2)
    for name in schema.OPTIMIZERS[optimizer["name"]].torch:
        if (cls := getattr(torch.optim, name, None)) is None:
            raise ConfigError(
                f"optimizer=muon needs torch.optim.Muon (torch 2.9 or later; this is {torch.__version__}); use "
                "optimizer=adamw"
            )
        if not (params := hidden_matrices(built) if name == "Muon" else list(built.parameters())):
            raise ConfigError(
                f"optimizer=muon is for hidden layers' weight matrices, and model={model['name']} has none; "
                "use optimizer=adamw"
            )
        try:
            cls(params, **{k: v for k, v in optimizer.items() if k in inspect.signature(cls).parameters})
        except ValueError as e:
            raise ConfigError(f"optimizer={optimizer['name']}: torch.optim.{name} refuses its settings: {e}") from None
    kwargs = {k: v for k, v in trainer.items() if k not in ("deterministic", "benchmark")}  # process-wide: the run's
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its notes (GPU available ...) are the run's to say
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pl.Trainer(**{**kwargs, "logger": False})
    except (MisconfigurationException, ValueError, TypeError, ImportError) as e:
        raise ConfigError(f"Lightning refused the trainer settings: {' '.join(str(e).split())}") from None
    finally:
        logging.disable(disabled)


def trainer_kwargs(trainer: dict[str, Any]) -> dict[str, Any]:
    """cfg.trainer as Lightning takes it: a float val_check_interval needs check_val_every_n_epoch 1, not null."""
    kwargs = {k: v for k, v in trainer.items() if k != "_target_"}
    if isinstance(kwargs.get("val_check_interval"), float) and kwargs.get("check_val_every_n_epoch") is None:
        kwargs["check_val_every_n_epoch"] = 1
    return kwargs


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
    """Before Hydra makes the run dir: a bad config leaves nothing, same-second runs get a dir each (..._1), and a
    live run's dir is locked against a second run."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_config(config)
            _claim(config, "run")
        except ConfigError as e:
            exit_with(e)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            _claim(config, "sweep")
        except ConfigError as e:
            exit_with(e)


_held: dict[Path, Any] = {}  # run dir -> its open lock file, held while this process lives


def _claim(config: DictConfig, kind: str) -> None:
    """Create hydra.<kind>.dir: a dir the user names for reuse (a run's locked), the default one exclusively (the
    next free suffix); Lightning's fast_dev_run saves nothing, so it gets a temporary dir unless one is named."""
    given = [o.lstrip("+~").split("=")[0] for o in [*config.hydra.overrides.task, *config.hydra.overrides.hydra]]
    if kind == "run" and config.trainer.get("fast_dev_run") and "hydra.run.dir" not in given:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
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
        lock = (path / ".lock").open("a+") if kind == "run" and first_process() else None
    except OSError as e:
        raise ConfigError(UNWRITABLE.format(path, e.strerror)) from None
    if lock is not None and path.resolve() not in _held:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            raise ConfigError(
                f"another run (pid {lock.read().strip() or '?'}) is writing into {path}: wait for it to end, or pass "
                "another hydra.run.dir"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        _held[path.resolve()] = lock
