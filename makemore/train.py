"""The training task: config -> data, model, trainer -> fit -> best-checkpoint metrics, samples, summary."""

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from makemore.callbacks import TrainingClock
from makemore.checkpoint import load_checkpoint
from makemore.config import validate_config
from makemore.datamodule import CharDataModule
from makemore.evaluation import mean_nll
from makemore.io import atomic_write_json, atomic_write_text
from makemore.lit_model import LanguageModel
from makemore.sampling import generate

log = logging.getLogger(__name__)
# Lightning warns that an IterableDataset with __len__ may miscount under several loader workers; ours
# are read in the main process and their length (Lightning calls until max_steps) is exact.
warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined")


def _plain(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)


def prepare_datamodule(cfg: DictConfig, **overrides: Any) -> CharDataModule:
    """The data of cfg.data, downloaded if need be, read, split and turned into examples."""
    datamodule: CharDataModule = instantiate(cfg.data, **overrides)
    datamodule.prepare_data()
    datamodule.setup("fit")
    log.info("data: %s, vocabulary %d, split sizes %s", datamodule.path, datamodule.vocab.size, datamodule.split_sizes)
    return datamodule


def build_module(cfg: DictConfig, datamodule: CharDataModule) -> LanguageModel:
    return LanguageModel(
        model=_plain(cfg.model),
        vocab=datamodule.vocab.chars,
        optimizer=_plain(cfg.optimizer),
        scheduler=_plain(cfg.scheduler) if cfg.get("scheduler") else None,
        log_every=cfg.log_every,
        data=datamodule.record(),
        divergence_factor=cfg.divergence_factor,
    )


def set_torch_threads(threads: int | None) -> None:
    """`threads`, or under a parallel launcher (hydra.launcher.n_jobs) each job's share of the cores,
    so that jobs running side by side do not fight over them."""
    if threads is None and HydraConfig.initialized():
        n_jobs = HydraConfig.get().launcher.get("n_jobs")
        if n_jobs:
            cores = os.cpu_count() or 1
            threads = max(1, cores // (n_jobs if n_jobs > 0 else cores))
    if threads:
        torch.set_num_threads(threads)


def train(cfg: DictConfig) -> float:
    """Train one run into cfg.run_dir and return its best val loss (what a sweeper minimizes)."""
    validate_config(cfg)
    set_torch_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = prepare_datamodule(cfg)
    module = build_module(cfg, datamodule)
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    clock = TrainingClock()
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [clock]
    trainer: L.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    train_time_s = time.perf_counter() - start

    if not trainer.is_global_zero:  # data-parallel: one process writes the results
        return float(trainer.checkpoint_callback.best_model_score)
    metrics = write_results(cfg, trainer, datamodule, train_time_s, clock.seconds)
    return metrics["val_loss"]


def write_results(
    cfg: DictConfig, trainer: L.Trainer, datamodule: CharDataModule, train_time_s: float, loop_s: float
) -> dict[str, Any]:
    """metrics.json (losses of best.ckpt over whole splits), the TensorBoard hparams entry, samples.txt."""
    run_dir = Path(cfg.run_dir)
    best_path = Path(trainer.checkpoint_callback.best_model_path)
    best, best_ckpt = load_checkpoint(best_path)
    losses = {
        f"{split}_loss": mean_nll(best.model, ctx, datamodule.eval_batch_size)
        for split, ctx in datamodule.contexts.items()
    }
    metrics = {
        "num_params": best.num_params,
        "vocab_size": datamodule.vocab.size,
        "split_sizes": datamodule.split_sizes,
        "steps": trainer.global_step,
        "train_time_s": round(train_time_s, 2),
        "steps_per_s": round(trainer.global_step / loop_s, 1),  # the training loop alone
        **losses,
        "best_step": best_ckpt["global_step"],
        "best_ckpt": str(best_path.relative_to(run_dir)),
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    if trainer.logger:
        knobs = {k: cfg[k] for k in ("block_size", "emb_dim", "hidden", "batch_size", "seed")}
        hparams = {
            **knobs,
            "model": _plain(cfg.model),
            "optimizer": _plain(cfg.optimizer),
            "max_steps": cfg.trainer.max_steps,
        }
        trainer.logger.log_hyperparams(hparams, {f"hparams/{k}": v for k, v in losses.items()})

    samples = generate(
        best.model,
        best.vocab,
        num_samples=cfg.sample.num_samples,
        block_size=best.model.block_size,
        max_len=cfg.sample.max_len,
        seed=cfg.seed,
    )
    atomic_write_text(run_dir / "samples.txt", "\n".join(samples) + "\n")
    log.info("metrics: %s", metrics)
    log.info("samples: %s", ", ".join(samples))
    return metrics
