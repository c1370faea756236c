"""Figures the seed notebook draws: the 2-D character embedding and the learning-rate sweep."""

import contextlib
import io
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only, never a window

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from makemore.io import atomic_write_bytes


@contextlib.contextmanager
def missing_glyphs_quiet() -> Iterator[None]:
    """Characters outside the font (emoji, CJK) are drawn as boxes; a warning per glyph per drawing is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        yield


def embedding_figure(table: torch.Tensor, labels: list[str], step: int | None = None, max_labels: int = 100) -> Figure:
    """Dimensions 0 and 1 of the embedding table, one labelled dot per character, as in the seed.

    A vocabulary larger than `max_labels` (CJK text has thousands) is drawn as unlabelled dots: the
    labels would cover each other, and each glyph missing from the font would cost a warning.
    """
    fig, ax = plt.subplots(figsize=(8, 8))
    points = table.detach().float().cpu()
    if points.shape[1] < 2:  # emb_dim=1: a line of characters
        points = torch.cat([points, torch.zeros_like(points)], dim=1)
    labelled = len(labels) <= max_labels
    ax.scatter(points[:, 0], points[:, 1], s=200 if labelled else 4)
    for (x, y), label in zip(points[:, :2].tolist(), labels if labelled else [], strict=False):
        ax.text(x, y, label, ha="center", va="center", color="white")
    ax.grid(which="minor")
    ax.grid()
    ax.set_xlabel("C[:, 0]")
    ax.set_ylabel("C[:, 1]")
    title = "character embedding" + (f" at step {step}" if step is not None else "")
    ax.set_title(title if labelled else f"{title} ({len(labels)} characters, unlabelled)")
    return fig


def lr_sweep_figure(lrs: list[float], losses: list[float], suggestion: float | None) -> Figure:
    """Loss against log10(lr), the seed's picture for choosing the learning rate."""
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot([math.log10(lr) for lr in lrs], losses)
    if suggestion is not None:
        ax.axvline(math.log10(suggestion), color="red", linestyle="--", label=f"suggested lr {suggestion:.3g}")
        ax.legend()
    ax.set_xlabel("log10(learning rate)")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("learning-rate sweep")
    ax.grid()
    return fig


def save_figure(fig: Figure, path: str | Path) -> None:
    """PNG to `path`, atomically, then close the figure."""
    buffer = io.BytesIO()
    with missing_glyphs_quiet():
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)


def knob_figure(points: list[tuple[float, float]], knob: str) -> Figure:
    """Val loss of each job of a sweep against one knob."""
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot([x for x, _ in points], [y for _, y in points], "o")
    ax.set_xlabel(knob)
    ax.set_ylabel("val loss (nats/char)")
    ax.set_title(f"sweep: val loss against {knob}")
    ax.grid()
    return fig


def family_figure(rows: list[dict]) -> Figure:
    """Val loss against parameters and against training time, one labelled point per run."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, key, label in ((axes[0], "num_params", "parameters"), (axes[1], "train_time_s", "training time (s)")):
        for row in rows:
            ax.scatter(row[key], row["val_loss"], s=40)
            label = row["run"].removeprefix("experiment=")
            ax.annotate(label, (row[key], row["val_loss"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (log scale)")
        ax.grid(which="both", alpha=0.3)
    axes[0].set_ylabel("val loss (nats/char, whole split)")
    fig.suptitle("the model family on one metric: val loss against size and against training time")
    fig.tight_layout()
    return fig
