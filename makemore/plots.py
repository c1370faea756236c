"""Figures the seed notebook draws: the 2-D character embedding and the learning-rate sweep."""

import math

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only, never a window

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def embedding_figure(table: torch.Tensor, labels: list[str], step: int | None = None) -> Figure:
    """Dimensions 0 and 1 of the embedding table, one labelled dot per character, as in the seed."""
    fig, ax = plt.subplots(figsize=(8, 8))
    points = table.detach().float().cpu()
    ax.scatter(points[:, 0], points[:, 1], s=200)
    for (x, y), label in zip(points[:, :2].tolist(), labels, strict=True):
        ax.text(x, y, label, ha="center", va="center", color="white")
    ax.grid(which="minor")
    ax.grid()
    ax.set_xlabel("C[:, 0]")
    ax.set_ylabel("C[:, 1]")
    ax.set_title("character embedding" + (f" at step {step}" if step is not None else ""))
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


def save_figure(fig: Figure, path) -> None:
    fig.savefig(path, dpi=100, bbox_inches="tight")
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
