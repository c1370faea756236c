"""The learning-rate sweep: Lightning's Tuner.lr_find, min_lr to max_lr exponentially over num_training steps."""

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig

from makemore.console import quiet_third_party_output
from makemore.io import atomic_write_json
from makemore.plots import lr_sweep_figure, save_figure
from makemore.training.train import _plain, build_module, prepare_datamodule

log = logging.getLogger(__name__)


def steepest_descent_lr(lrs: list[float], losses: list[float], skip_begin: int) -> float | None:
    """The lr where the smoothed loss falls fastest per decade of lr (not Lightning's per unit lr), after skip_begin."""
    lr, loss = (torch.tensor(v[skip_begin:-1], dtype=torch.float64) for v in (lrs, losses))
    lr, loss = lr[torch.isfinite(loss)], loss[torch.isfinite(loss)]
    if len(loss) < 2:
        return None
    slope = torch.gradient(loss, spacing=[lr.log10()])[0]
    return lr[slope.argmin()].item()


class _WithoutBar:
    """stderr without the Tuner's progress bar and its trailing blank line (drawn whatever enable_progress_bar says)."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        return len(text) if "Finding best initial lr" in text or not text.strip() else self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def find_lr(cfg: DictConfig) -> float | None:
    """Sweep, write lr_find.png and lr_find.json into cfg.run_dir; the suggested lr, None if the loss never falls."""
    quiet_third_party_output()
    run_dir, settings = Path(cfg.run_dir), cfg.lr_find
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = prepare_datamodule(cfg)
    module = build_module(cfg, datamodule)
    module.stop_on_divergence = False  # the sweep runs into divergence; the Tuner stops at early_stop_threshold
    # one step per call (no plan: the Tuner replaces the callbacks), the lr rising per step
    settings_of_run = dict(logger=False, callbacks=[], enable_checkpointing=False, limit_val_batches=0,
                           val_check_interval=None, enable_progress_bar=False,
                           use_distributed_sampler=False)  # fmt: skip
    trainer = L.Trainer(**{**_plain(cfg.trainer), **settings_of_run})
    sweep = {k: settings[k] for k in ("min_lr", "max_lr", "num_training", "early_stop_threshold")}
    with contextlib.redirect_stderr(_WithoutBar(sys.stderr)):
        finder = Tuner(trainer).lr_find(module, datamodule=datamodule, mode="exponential", update_attr=False, **sweep)
    # Lightning's running mean divides by 1 - beta^(step + 1), the step already counted: undo that one factor
    beta, lrs = 0.98, finder.results["lr"]
    losses = [s * (1 - beta ** (i + 2)) / (1 - beta ** (i + 1)) for i, s in enumerate(finder.results["loss"])]
    suggestion = steepest_descent_lr(lrs, losses, settings.skip_begin)
    fig = lr_sweep_figure(lrs, losses, suggestion)
    if (tensorboard := (cfg.get("logger") or {}).get("tensorboard")) is not None:
        instantiate(tensorboard).experiment.add_figure("lr_find", fig, 0, close=False)
    save_figure(fig, run_dir / "lr_find.png")
    atomic_write_json(run_dir / "lr_find.json", {"suggested_lr": suggestion, "lr": lrs, "loss": losses})
    if suggestion is None:
        log.info("no lr suggested: the loss never fell over the sweep (see %s)", run_dir / "lr_find.png")
    else:
        use = "train with optimizer.lr=%.4g, or sweep and train at once with lr_find.apply=true"
        log.info("suggested lr: %.4g (lr_find.png, lr_find.json in %s); " + use, suggestion, run_dir, suggestion)
    return suggestion
