"""The training task: config -> data, model, trainer -> fit -> best-checkpoint metrics, samples, summary."""

import contextlib
import functools
import inspect
import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate, to_absolute_path
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, EMAWeightAveraging, ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from makemore.config import KNOBS
from makemore.console import first_process, logging_kept, quiet_third_party_output
from makemore.data.datamodule import CharDataModule
from makemore.errors import ConfigError, MakemoreError, TrainingDiverged
from makemore.evaluation import mean_nll
from makemore.io import atomic_write_json, atomic_write_text
from makemore.models import MODELS
from makemore.resolvers import run_label
from makemore.sampling import generate
from makemore.threads import free_cores
from makemore.training.callbacks import TrainingClock
from makemore.training.checkpoint import CheckpointWriter, check_resumable, load_checkpoint, read_checkpoint
from makemore.training.module import LitLanguageModel
from makemore.training.plan import LoopPlan, plan_of

log = logging.getLogger(__name__)
_plain = functools.partial(OmegaConf.to_container, resolve=True)  # a config node as plain values


def train(cfg: DictConfig) -> float:
    """Train one run into cfg.run_dir (from ckpt_path / resume's last.ckpt); its best val loss, for a sweeper."""
    OmegaConf.resolve(cfg)  # once: the run's label, paths and derived values are fixed at its start
    quiet_third_party_output()
    if first_process():
        Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)  # the CLI's door claimed it; in-process callers may not
        show_config(cfg, Path(cfg.run_dir))
    else:  # a data-parallel worker: the first process reports
        logging.getLogger().setLevel(logging.WARNING)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision(cfg.matmul_precision)
    try:
        datamodule = prepare_datamodule(cfg)
        module = build_module(cfg, datamodule)
        ckpt_path, start_step = None, 0  # a fresh run; else ckpt_path, or resume's last.ckpt
        if cfg.get("resume") or cfg.get("ckpt_path"):
            given = Path(cfg.resume) / "checkpoints" / "last.ckpt" if cfg.get("resume") else Path(cfg.ckpt_path)
            ckpt_path = Path(to_absolute_path(str(given)))
            ckpt = read_checkpoint(ckpt_path)
            check_resumable(ckpt, ckpt_path, module)
            start_step = ckpt["global_step"]
            log.info("continuing from %s at step %d", ckpt_path, start_step)
    except MakemoreError:  # refused before training: a new run dir holds nothing to keep
        in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN  # its failed row
        if first_process() and not in_sweep and not cfg.resume and not (Path(cfg.run_dir) / "checkpoints").exists():
            shutil.rmtree(cfg.run_dir, ignore_errors=True)
            date = Path(cfg.run_dir).resolve().parent  # the default layout's outputs_dir/<date>, else kept
            if date.parent == Path(to_absolute_path(cfg.outputs_dir)).resolve():
                with contextlib.suppress(OSError):
                    date.rmdir()  # if this was its only run
        raise
    with lightning_errors(), warnings.catch_warnings():
        if cfg.get("resume"):  # its checkpoints/ is meant to be there: not Lightning's "exists and is not empty"
            warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        trainer = build_trainer(cfg, module, datamodule, start_step)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    train_time_s = time.perf_counter() - start
    stoppers = [c for c in trainer.callbacks if isinstance(c, EarlyStopping) and c.wait_count >= c.patience]
    if stoppers and trainer.should_stop and trainer.global_step < plan_of(trainer).total_steps:
        log.info("early stopping: %s on %s ended the run at step %d", type(stoppers[0]).__name__, stoppers[0].monitor,
                 trainer.global_step)  # fmt: skip
    if trainer.fast_dev_run:  # it trains and validates a few batches and saves nothing: say that it worked
        n, val = trainer.global_step, module.last_losses.get("val_loss", math.nan)
        log.info("fast_dev_run: %d training step%s and validation ran without error (train loss %.4f, val %.4f); "
                 "nothing is saved in a fast dev run (Lightning's fast_dev_run turns checkpoints and loggers off; its "
                 "log: %s)", n, "" if n == 1 else "s", module.last_losses.get("train_loss", math.nan), val,
                 cfg.run_dir)  # fmt: skip
        return val
    if not trainer.is_global_zero:  # data-parallel: one process writes the results
        best = best_checkpoint(trainer)
        return float(best.best_model_score) if best is not None else module.last_losses.get("val_loss", math.nan)
    return write_results(cfg, trainer, module, datamodule, train_time_s, start_step)["val_loss"]


def prepare_datamodule(cfg: DictConfig) -> CharDataModule:
    """cfg.data, downloaded, split and viewed for the model; relative paths from where the user ran (even chdir'd)."""
    path = to_absolute_path(cfg.data.path) if cfg.data.path is not None else None
    default = {**_plain(cfg.data.default), "file": to_absolute_path(cfg.data.default.file)}
    view = MODELS[cfg.model.name].view  # the name was checked at the door
    datamodule: CharDataModule = instantiate(cfg.data, path=path, default=default, view=view)
    datamodule.prepare_data()
    datamodule.setup("fit")
    sizes = " / ".join(f"{n:,}" for n in datamodule.split_sizes.values())
    chars = datamodule.vocab.size - 1
    log.info("data: %s, %d distinct characters, train/val/test targets %s", datamodule.record["path"], chars, sizes)
    return datamodule


def build_module(cfg: DictConfig, datamodule: CharDataModule) -> LitLanguageModel:
    scheduler = _plain(cfg.scheduler) if cfg.get("scheduler") else None
    return LitLanguageModel(_plain(cfg.model), datamodule.vocab.chars, _plain(cfg.optimizer), scheduler,
                            datamodule.record, cfg.divergence_factor)  # fmt: skip


def build_trainer(cfg: DictConfig, module: LitLanguageModel, datamodule: CharDataModule, start_step: int = 0
                  ) -> L.Trainer:  # fmt: skip
    """Lightning's Trainer from cfg.trainer with the run's loggers, callbacks and LoopPlan; cfg.threads CPU threads."""
    threads = cfg.threads
    positions = cfg.batch_size * (cfg.block_size if module.model.view == "sequence" else 1)
    if threads is None and module.num_params * positions < cfg.one_thread_below:
        threads = 1  # a tiny step: a second thread costs more than it saves
    if threads is None and HydraConfig.initialized() and (n_jobs := HydraConfig.get().launcher.get("n_jobs")):
        threads = max(1, (os.cpu_count() or 1) // n_jobs) if n_jobs > 0 else 1  # n_jobs=-1: a job per core
    torch.set_num_threads(threads or free_cores())
    loggers = []  # cfg.logger's; a resume's TensorBoard drops what was logged after its checkpoint: one curve
    for logger_cfg in (cfg.get("logger") or {}).values():
        resumed = {"purge_step": start_step or None} if logger_cfg._target_.endswith("TensorBoardLogger") else {}
        mlflow = logger_cfg._target_.endswith("MLFlowLogger")  # a new MLflow database takes over the process's logging
        with logging_kept() if mlflow else contextlib.nullcontext():
            loggers.append(instantiate(logger_cfg, **resumed))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    if cfg.ema is not None:  # acts after every optimizer step: the one-step path
        callbacks.append(EMAWeightAveraging(decay=cfg.ema))
    kwargs = _plain(cfg.trainer)
    off = tuple(kind for kind, on in ((Checkpoint, "enable_checkpointing"), (ProgressBar, "enable_progress_bar"))
                if not kwargs.get(on, True))  # fmt: skip
    callbacks = [c for c in callbacks if not isinstance(c, off)]
    if isinstance(kwargs.get("profiler"), dict):
        kwargs["profiler"] = instantiate(kwargs["profiler"])
    subclass = type(module).__name__ if type(module) is not LitLanguageModel else None
    module.plan = datamodule.plan = plan = LoopPlan(cfg.steps_per_call, kwargs, callbacks, subclass)
    module.automatic_optimization = not plan.multi_step
    if plan.multi_step:  # the module clips: Lightning refuses clipping under manual optimization
        module.clip = (kwargs.pop("gradient_clip_val", None) or None, kwargs.pop("gradient_clip_algorithm", None))
        if kwargs.get("profiler"):
            hooks = "the batch hooks count calls, not steps (steps_per_call=1 profiles Lightning's step-by-step loop)"
            log.info("profiler: a Lightning call runs up to %d optimizer steps, so %s", plan.steps_per_call, hooks)
    else:
        log.info("one optimizer step per Lightning call (Lightning's automatic optimization): %s", plan.reason)
    limit_val = kwargs.get("limit_val_batches")
    if isinstance(limit_val, float) and 0.0 < limit_val < 1.0:  # a fraction of the split, not of its one batch
        datamodule.val_fraction, kwargs["limit_val_batches"] = limit_val, None
    # the door built a Trainer with these settings already: what Lightning refuses was refused there
    plan.trainer = trainer = L.Trainer(**kwargs, logger=loggers or False, callbacks=[plan, *callbacks, TrainingClock()],
                                       plugins=[CheckpointWriter()], use_distributed_sampler=False)  # fmt: skip
    return trainer


def best_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The callback that keeps best.ckpt (lowest val_loss), if checkpointing is on."""
    monitors = (c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor == "val_loss")
    return next(monitors, None)


@contextlib.contextmanager
def lightning_errors():
    """What Lightning refuses at fit time (a GPU asked for on a machine without one, ...) as one line."""
    try:
        yield
    except MisconfigurationException as e:
        raise ConfigError(f"Lightning refused the trainer settings: {' '.join(str(e).split())}") from None
    except ValueError as e:
        longer = re.search(r"`val_check_interval` \((\d+)\) must be less .* training batches \((\d+)\)", str(e))
        if longer is None:
            raise
        raise ConfigError(
            f"trainer.val_check_interval={longer[1]} steps is longer than an epoch ({longer[2]} steps), and "
            "trainer.check_val_every_n_epoch counts within epochs: set trainer.val_check_interval=1.0 to validate "
            f"once per epoch, or trainer.check_val_every_n_epoch=null to validate every {longer[1]} steps"
        ) from None
    except RuntimeError as e:
        if "returned nan values" not in str(e):
            raise
        raise TrainingDiverged(
            f"trainer.detect_anomaly stopped the run: {str(e).splitlines()[0]}; torch's warning above shows the "
            "forward call that made it: lower optimizer.lr, or look at that operation's inputs"
        ) from None


def write_results(cfg: DictConfig, trainer: L.Trainer, module: LitLanguageModel, datamodule: CharDataModule,
                  train_time_s: float, start_step: int = 0) -> dict[str, Any]:  # fmt: skip
    """metrics.json (whole-split losses of best.ckpt, else the final weights), final log entries, samples, summary."""
    run_dir, callback = Path(cfg.run_dir), best_checkpoint(trainer)
    if callback is not None and callback.best_model_path:
        best, best_ckpt = load_checkpoint(best_path := Path(callback.best_model_path))
        # absolute when it is the best of the run that ckpt_path= continued
        best_file = str(best_path.relative_to(run_dir) if best_path.is_relative_to(run_dir) else best_path)
        best_step = best_ckpt["global_step"]
    else:
        best, best_step, best_file = module.cpu().eval(), trainer.global_step, None
    losses = {f"{split}_loss": mean_nll(best.model, ex, datamodule.eval_batch_size)
              for split, ex in datamodule.examples.items()}  # fmt: skip
    loop_s = next(c for c in trainer.callbacks if isinstance(c, TrainingClock)).seconds
    speed = round((trainer.global_step - start_step) / loop_s, 1) if loop_s else None  # the loop alone
    metrics = {"model": best.hparams.model["name"], "name": run_label(cfg), "num_params": best.num_params,
               "vocab_size": datamodule.vocab.size, "split_sizes": datamodule.split_sizes,
               "data": {k: datamodule.record[k] for k in ("path", "sha256")},  # what compare.py tells apart
               "steps": trainer.global_step, "resumed_from_step": start_step, "train_time_s": round(train_time_s, 2),
               "steps_per_s": speed, **losses, "best_step": best_step, "best_ckpt": best_file}  # fmt: skip
    atomic_write_json(run_dir / "metrics.json", metrics)
    log_final(cfg, trainer, losses)
    samples = generate(best.model, best.vocab, cfg.sample.num_samples, max_len=cfg.sample.max_len, seed=cfg.seed)
    atomic_write_text(run_dir / "samples.txt", "\n".join(samples) + "\n")
    stores = [str(c.tracking_uri) for c in (cfg.get("logger") or {}).values() if c.get("tracking_uri")]
    loop = f" (the loop alone: {speed:,.0f} steps/s)" if speed else ""
    parts = ["metrics.json", "samples.txt", "checkpoints/", "tensorboard/", "csv/", "wandb/"]
    written = [part for part in parts if (run_dir / part).exists()]
    summary = [  # the end of the run's output, for a person: what was trained, how well, how fast, and where it is
        f"done: {metrics['model']} with {metrics['num_params']:,} parameters, {metrics['steps']:,} steps in "
        f"{metrics['train_time_s']:.1f} s{loop}",
        f"loss (nats/char, {best_file or 'final weights'} from step {best_step:,}): "
        f"train {losses['train_loss']:.4f}  val {losses['val_loss']:.4f}  test {losses['test_loss']:.4f}",
        f"samples: {', '.join(samples[:10])}",
        f"run dir: {run_dir} ({', '.join(written)})" + "".join(f"; tracking store: {s}" for s in stores),
    ]
    log.info("\n".join(summary))
    return metrics


def log_final(cfg: DictConfig, trainer: L.Trainer, losses: dict[str, float]) -> None:
    """The run's knobs with its final losses (under results/): TensorBoard's HPARAMS, MLflow's and W&B's params."""
    hparams = {k: cfg[k] for k in ("block_size", "emb_dim", "hidden", "batch_size", "seed")}
    hparams |= {"model": _plain(cfg.model), "optimizer": _plain(cfg.optimizer), "scheduler": _plain(cfg.scheduler),
                "max_steps": cfg.trainer.max_steps, "tags": list(cfg.tags)}  # fmt: skip
    results = {f"results/{k}": v for k, v in losses.items()}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, results)
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(results, step=trainer.global_step)
        logger.finalize("success")
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.finish()  # the offline run is complete; a next run in this process starts its own


def show_config(cfg: DictConfig, run_dir: Path) -> None:
    """The resolved config as a tree: all of it in config_tree.txt, the run's parts on the console (print_config)."""
    from rich.console import Console
    from rich.tree import Tree

    def grow(node: Tree, mapping: dict, skip: tuple[str, ...] | None = None, said: Any = None) -> Tree:
        """`mapping` under `node`: at the root (`skip` given) its knobs in one line; no leaf repeats `said`."""
        text = {k: json.dumps(v) if isinstance(v, list | bool | None) else str(v) for k, v in mapping.items()}
        if skip is not None:
            node.add(", ".join(f"{k}={text[k]}" for k in text if not isinstance(mapping[k], dict)), highlight=False)
            mapping = {k: v for k, v in mapping.items() if isinstance(v, dict) and k not in skip}
        for key, value in mapping.items():
            if isinstance(value, dict) and value:
                grow(node.add(f"[bold]{key}[/bold]"), value, said=said)
            elif said is None or value != said:
                node.add(f"{key}: {text[key]}", highlight=False)
        return node

    values = _plain(cfg)
    with (run_dir / "config_tree.txt").open("w") as f:  # the run's start, not a result: a plain write
        Console(file=f, width=120, color_system=None).print(grow(Tree("config", guide_style="dim"), values, ()))
    if cfg.get("print_config", True):  # the run's parts only, the trainer's keys where they differ from Lightning's
        defaults = {k: p.default for k, p in inspect.signature(L.Trainer.__init__).parameters.items()}
        shown = {k: v for k, v in values["trainer"].items() if k not in defaults or v != defaults[k]}
        label = f"trainer ({len(values['trainer']) - len(shown)} more at Lightning's defaults: config_tree.txt)"
        values = {k: v for k, v in values.items() if k not in KNOBS}  # each shows where it lands: model.hidden=50
        values = {label if k == "trainer" else k: shown if k == "trainer" else v for k, v in values.items()}
        if values["data"].get("path") is not None:  # data.default names the file read when data.path is null
            values["data"] = {k: v for k, v in values["data"].items() if k != "default"}
        hidden = ("hydra", "callbacks", "lr_find", "sample")
        Console(width=120).print(grow(Tree("config", guide_style="dim"), values, hidden, cfg.run_dir))
