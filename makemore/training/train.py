"""The training task: config -> data, model, trainer -> fit -> best-checkpoint metrics, samples, summary."""

import contextlib
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate, to_absolute_path
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Checkpoint, EMAWeightAveraging, ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from makemore.config import trainer_kwargs
from makemore.data.datamodule import CharDataModule
from makemore.errors import ConfigError, TrainingDiverged, first_process
from makemore.evaluation import mean_nll
from makemore.io import atomic_write_json, atomic_write_text
from makemore.models import model_class
from makemore.resolvers import run_label
from makemore.sampling import generate
from makemore.third_party_noise import logging_kept, quiet_third_party_output
from makemore.training.callbacks import TrainingClock
from makemore.training.checkpoint import CheckpointWriter, check_resumable, load_checkpoint, read_checkpoint
from makemore.training.module import LitLanguageModel
from makemore.training.plan import choose_path, chunk_length, steps_per_epoch

log = logging.getLogger(__name__)


def _plain(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)


def prepare_datamodule(cfg: DictConfig, **overrides: Any) -> CharDataModule:
    """The data of cfg.data, downloaded if need be, read, split and turned into the examples of the model's view."""
    view = model_class(cfg.model.name).view
    # Relative paths are the user's: from the directory they ran in, also under hydra.job.chdir=true.
    path = to_absolute_path(cfg.data.path) if cfg.data.path is not None else None
    default = {**_plain(cfg.data.default), "file": to_absolute_path(cfg.data.default.file)}
    datamodule: CharDataModule = instantiate(cfg.data, path=path, default=default, view=view, **overrides)
    datamodule.prepare_data()
    datamodule.setup("fit")
    sizes = " / ".join(f"{n:,}" for n in datamodule.split_sizes.values())
    chars = datamodule.vocab.size - 1
    log.info("data: %s, %d distinct characters, train/val/test targets %s", datamodule.path, chars, sizes)
    return datamodule


def build_module(cfg: DictConfig, datamodule: CharDataModule) -> LitLanguageModel:
    return LitLanguageModel(
        model=_plain(cfg.model),
        vocab=datamodule.vocab.chars,
        optimizer=_plain(cfg.optimizer),
        scheduler=_plain(cfg.scheduler) if cfg.get("scheduler") else None,
        data=datamodule.record(),
        divergence_factor=cfg.divergence_factor,
    )


def plan_steps(cfg: DictConfig, datamodule: CharDataModule) -> None:
    """Set trainer.max_steps to the steps the run will take when max_epochs (or fast_dev_run) ends it first, so
    the schedule (decay_at, cosine's total_steps) is planned over the run that happens."""
    trainer = cfg.trainer
    epoch = steps_per_epoch(_plain(trainer), datamodule.train_batches_per_epoch)
    steps = trainer.max_steps
    if trainer.max_epochs not in (None, -1) and not trainer.fast_dev_run:
        by_epochs = trainer.max_epochs * epoch
        steps = by_epochs if steps == -1 else min(steps, by_epochs)
        if steps == by_epochs:
            log.info("trainer.max_epochs=%d: %d optimizer steps (%d per epoch)", trainer.max_epochs, steps, epoch)
    trainer.max_steps = int(steps)
    interval = trainer.val_check_interval
    if trainer.check_val_every_n_epoch is not None and isinstance(interval, int) and interval > epoch:
        raise ConfigError(
            f"trainer.val_check_interval={interval} steps is longer than an epoch ({epoch} steps) while "
            f"trainer.check_val_every_n_epoch={trainer.check_val_every_n_epoch} counts within epochs: set "
            "trainer.check_val_every_n_epoch=null to validate every N steps across epochs"
        )


def set_torch_threads(threads: int | None, step_work: int, one_thread_below: float) -> None:
    """`threads`; else under a parallel launcher (hydra.launcher.n_jobs) each job's share of the cores, so
    jobs side by side do not fight over them; else one thread for a tiny step (step_work = parameters x
    positions per minibatch below `one_thread_below`: the notebook's MLP), where waking a second thread for
    each small op costs more than it saves (measured 2026-12-02, 6 interleaved pairs on a loaded 2-core
    machine: the notebook's MLP 448 us/step on one thread, 2,673 on two); else torch's default."""
    if threads is None and HydraConfig.initialized():
        n_jobs = HydraConfig.get().launcher.get("n_jobs")
        if n_jobs:
            cores = os.cpu_count() or 1
            threads = max(1, cores // (n_jobs if n_jobs > 0 else cores))
    if threads is None and step_work < one_thread_below:
        threads = 1
    if threads:
        torch.set_num_threads(threads)


def train(cfg: DictConfig) -> float:
    """Train one run into cfg.run_dir (from ckpt_path / resume's last.ckpt if given) and return its best
    val loss (what a sweeper minimizes). The config was checked at the door (CheckConfigFirst)."""
    quiet_third_party_output()
    if not first_process():  # a data-parallel worker: the first process reports
        logging.getLogger().setLevel(logging.WARNING)
    else:
        Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
        show_config(cfg, Path(cfg.run_dir))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision(cfg.matmul_precision)
    datamodule = prepare_datamodule(cfg)
    plan_steps(cfg, datamodule)
    module = build_module(cfg, datamodule)
    positions = cfg.batch_size * (cfg.block_size if module.model.view == "sequence" else 1)
    set_torch_threads(cfg.threads, module.num_params * positions, cfg.one_thread_below)
    ckpt_path = resume_checkpoint(cfg)
    start_step = 0
    if ckpt_path is not None:
        ckpt = read_checkpoint(ckpt_path)
        check_resumable(ckpt, ckpt_path, module)
        start_step = ckpt["global_step"]
        log.info("continuing from %s at step %d", ckpt_path, start_step)
    # A resumed run's TensorBoard writer drops what the interrupted run logged after its checkpoint,
    # so the curve goes on as one line instead of two overlapping ones.
    loggers = build_loggers(cfg, purge_step=start_step if start_step else None)
    clock = TrainingClock()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()] + [clock]
    if cfg.ema is not None:  # its on_train_batch_end runs after every optimizer step: the plan takes the one-step path
        callbacks.append(EMAWeightAveraging(decay=cfg.ema))
    trainer = build_trainer(cfg, module, datamodule, loggers, callbacks)

    start = time.perf_counter()
    with lightning_errors():
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    train_time_s = time.perf_counter() - start

    if trainer.fast_dev_run:
        return fast_dev_run_report(trainer, module)
    if not trainer.is_global_zero:  # data-parallel: one process writes the results
        best = best_checkpoint(trainer)
        return float(best.best_model_score) if best is not None else module.last_losses.get("val_loss", math.nan)
    metrics = write_results(cfg, trainer, module, datamodule, train_time_s, clock.seconds, start_step)
    return metrics["val_loss"]


def build_trainer(
    cfg: DictConfig, module: LitLanguageModel, datamodule: CharDataModule, loggers: list[Logger], callbacks: list
) -> L.Trainer:
    """Lightning's Trainer from cfg.trainer, on the path makemore.training.plan chooses for these callbacks."""
    kwargs = trainer_kwargs(_plain(cfg.trainer))
    if not kwargs.get("enable_checkpointing", True):
        callbacks = [c for c in callbacks if not isinstance(c, Checkpoint)]
    if not kwargs.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if isinstance(kwargs.get("profiler"), dict):
        kwargs["profiler"] = instantiate(kwargs["profiler"])
    subclass = type(module) if type(module) is not LitLanguageModel else None
    path = choose_path(cfg.steps_per_call, kwargs, callbacks, subclass)
    clip, algorithm = kwargs.get("gradient_clip_val"), kwargs.get("gradient_clip_algorithm")
    if path.steps_per_call > 1:  # the module clips: Lightning refuses clipping under manual optimization
        kwargs.pop("gradient_clip_val", None), kwargs.pop("gradient_clip_algorithm", None)
        module.use_path(path.steps_per_call, clip, algorithm)
        datamodule.steps_per_call, datamodule.next_chunk = path.steps_per_call, chunk_length
        if kwargs.get("profiler"):
            log.info(
                "profiler: each Lightning call runs up to %d optimizer steps, so run_training_batch and the "
                "batch hooks count calls, not steps (steps_per_call=1 profiles Lightning's step-by-step loop)",
                path.steps_per_call,
            )
    else:
        module.use_path(1)
        datamodule.steps_per_call, datamodule.next_chunk = 1, None
        log.info("one optimizer step per Lightning call (Lightning's automatic optimization): %s", path.reason)
    limit_val = kwargs.get("limit_val_batches")
    if isinstance(limit_val, float) and 0.0 < limit_val < 1.0:  # a fraction of the split, not of its one batch
        datamodule.val_fraction, kwargs["limit_val_batches"] = limit_val, None
    with lightning_errors():
        return L.Trainer(
            **kwargs,
            logger=loggers or False,
            callbacks=callbacks,
            plugins=[CheckpointWriter()],
            use_distributed_sampler=False,
        )


def best_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The callback that keeps best.ckpt (lowest val_loss), if checkpointing is on."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor == "val_loss":
            return callback
    return None


def fast_dev_run_report(trainer: L.Trainer, module: LitLanguageModel) -> float:
    """Lightning's fast_dev_run trains and validates a few batches and saves nothing: say that it worked."""
    losses = module.last_losses
    n = trainer.global_step
    log.info(
        "fast_dev_run: %d training step%s and validation ran without error (train loss %.4f, val %.4f); nothing "
        "is saved in a fast dev run (Lightning's fast_dev_run turns checkpoints and loggers off)",
        n,
        "" if n == 1 else "s",
        losses.get("loss", math.nan),
        losses.get("val_loss", math.nan),
    )
    return losses.get("val_loss", math.nan)


@contextlib.contextmanager
def lightning_errors():
    """What Lightning refuses in the config (a val_check_interval longer than an epoch with
    check_val_every_n_epoch set, a GPU asked for on a machine without one, ...) as one line."""
    try:
        yield
    except MisconfigurationException as e:
        raise ConfigError(f"Lightning refused the trainer settings: {' '.join(str(e).split())}") from None
    except RuntimeError as e:
        if "returned nan values" not in str(e):
            raise
        first = str(e).splitlines()[0]
        raise TrainingDiverged(
            f"trainer.detect_anomaly stopped the run: {first}; torch's warning above shows the forward call that "
            "made it: lower optimizer.lr, or look at that operation's inputs"
        ) from None


def build_loggers(cfg: DictConfig, purge_step: int | None) -> list[Logger]:
    """The loggers of cfg.logger (tensorboard, csv, mlflow, wandb: one or several). A resumed run's
    TensorBoard writer drops what the interrupted run logged after its checkpoint (`purge_step`), so the
    curve goes on as one line instead of two overlapping ones."""
    loggers = []
    with logging_kept():  # a new MLflow database would take over the process's logging
        for logger_cfg in (cfg.get("logger") or {}).values():
            resumed = {"purge_step": purge_step} if logger_cfg._target_.endswith("TensorBoardLogger") else {}
            loggers.append(instantiate(logger_cfg, **resumed))
    return loggers


def write_results(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: LitLanguageModel,
    datamodule: CharDataModule,
    train_time_s: float,
    loop_s: float,
    start_step: int = 0,
) -> dict[str, Any]:
    """metrics.json (losses of best.ckpt over whole splits; of the final weights when checkpointing is off
    or nothing was validated), the TensorBoard hparams entry, samples.txt. Times and speed are this
    process's: a resumed run counts from `start_step`."""
    run_dir = Path(cfg.run_dir)
    callback = best_checkpoint(trainer)
    if callback is not None and callback.best_model_path:
        best_path = Path(callback.best_model_path)
        best, best_ckpt = load_checkpoint(best_path)
        # relative to the run dir; absolute when it is the best of the run that ckpt_path= continued
        best_file = str(best_path.relative_to(run_dir) if best_path.is_relative_to(run_dir) else best_path)
        best_step = best_ckpt["global_step"]
    else:
        best, best_step, best_file = module.cpu().eval(), trainer.global_step, None
    losses = {
        f"{split}_loss": mean_nll(best.model, ctx, datamodule.eval_batch_size)
        for split, ctx in datamodule.examples.items()
    }
    record = datamodule.record()
    metrics = {
        "model": best.hparams.model["name"],
        "name": run_label(cfg),
        "num_params": best.num_params,
        "vocab_size": datamodule.vocab.size,
        "split_sizes": datamodule.split_sizes,
        "data": {"path": record["path"], "sha256": record["sha256"]},  # what compare.py tells apart
        "steps": trainer.global_step,
        "resumed_from_step": start_step,
        "train_time_s": round(train_time_s, 2),
        "steps_per_s": round((trainer.global_step - start_step) / loop_s, 1) if loop_s else None,  # the loop alone
        **losses,
        "best_step": best_step,
        "best_ckpt": best_file,  # null: the final weights were scored (no best.ckpt)
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    knobs = {k: cfg[k] for k in ("block_size", "emb_dim", "hidden", "batch_size", "seed")}
    hparams = {
        **knobs,
        "model": _plain(cfg.model),
        "optimizer": _plain(cfg.optimizer),
        "scheduler": _plain(cfg.scheduler),
        "max_steps": cfg.trainer.max_steps,
        "tags": list(cfg.tags),
    }
    # The final losses under results/: their charts sort after the loss curves in TensorBoard's Scalars tab.
    results = {f"results/{k}": v for k, v in losses.items()}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, results)  # the HPARAMS tab shows each run's knobs with its losses
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(results, step=trainer.global_step)
        logger.finalize("success")
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.finish()  # the offline run is complete; a next run in this process starts its own

    samples = generate(
        best.model,
        best.vocab,
        num_samples=cfg.sample.num_samples,
        max_len=cfg.sample.max_len,
        seed=cfg.seed,
    )
    atomic_write_text(run_dir / "samples.txt", "\n".join(samples) + "\n")
    log.info(summary(metrics, run_dir, samples))
    return metrics


def summary(metrics: dict[str, Any], run_dir: Path, samples: list[str]) -> str:
    """The end of a run's output, for a person: what was trained, how well, how fast, and where it is."""
    speed = f", {metrics['steps_per_s']:,.0f} steps/s" if metrics["steps_per_s"] else ""
    return "\n".join(
        [
            f"done: {metrics['model']} with {metrics['num_params']:,} parameters, {metrics['steps']:,} steps in "
            f"{metrics['train_time_s']:.1f} s{speed}",
            f"loss (nats/char, {metrics['best_ckpt'] or 'final weights'} from step {metrics['best_step']:,}): "
            f"train {metrics['train_loss']:.4f}  val {metrics['val_loss']:.4f}  test {metrics['test_loss']:.4f}",
            f"samples: {', '.join(samples[:10])}",
            f"run dir: {run_dir} ({', '.join(_run_dir_contents(run_dir))})",
        ]
    )


def _run_dir_contents(run_dir: Path) -> list[str]:
    """What a person looks at in the run dir, of what this run wrote (the loggers' folders depend on logger=)."""
    parts = ["metrics.json", "samples.txt", "checkpoints/", "tensorboard/", "csv/", "wandb/"]
    return [part for part in parts if (run_dir / part.rstrip("/")).exists()]


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


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint a run continues from: ckpt_path, resume's last.ckpt, or None for a fresh run."""
    if cfg.get("resume"):
        return Path(to_absolute_path(cfg.resume)) / "checkpoints" / "last.ckpt"
    return Path(to_absolute_path(cfg.ckpt_path)) if cfg.get("ckpt_path") else None
