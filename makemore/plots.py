"""Figures: the notebook's 2-D character embedding and learning-rate sweep, a sweep's knob, the model family."""

import contextlib
import io
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only, never a window

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from makemore.io import atomic_write_bytes

MARKER_SIZE = 40  # of a run's point in the family figure, in points^2 (scatter's s)
LABEL_PLACES = [((5, 4), "left"), ((5, -11), "left"), ((-5, 4), "right"), ((-5, -11), "right")]  # (offset, ha)


@contextlib.contextmanager
def missing_glyphs_quiet() -> Iterator[None]:
    """Characters outside the font (emoji, CJK) are drawn as boxes; a warning per glyph per drawing is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        yield


def save_figure(fig: Figure, path: str | Path) -> None:
    buffer = io.BytesIO()
    with missing_glyphs_quiet():
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)


def embedding_figure(table: torch.Tensor, labels: list[str], step: int | None = None, max_labels: int = 100) -> Figure:
    """Dimensions 0 and 1 of the embedding table, a dot per character, labelled up to `max_labels` characters."""
    fig, ax = plt.subplots(figsize=(8, 8))
    points = torch.nn.functional.pad(table.detach().float().cpu(), (0, 1))[:, :2]  # emb_dim=1: a line of characters
    labelled = len(labels) <= max_labels
    ax.scatter(points[:, 0], points[:, 1], s=200 if labelled else 4)
    for (x, y), label in zip(points.tolist(), labels if labelled else [], strict=False):
        ax.text(x, y, label, ha="center", va="center", color="white")
    ax.grid()
    title = "character embedding" + (f" at step {step}" if step is not None else "")
    title += "" if labelled else f" ({len(labels)} characters, unlabelled)"
    ax.set(xlabel="C[:, 0]", ylabel="C[:, 1]", title=title)
    return fig


def lr_sweep_figure(lrs: list[float], losses: list[float], suggestion: float | None) -> Figure:
    """Loss against log10(lr), the notebook's picture for choosing the learning rate."""
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot([math.log10(lr) for lr in lrs], losses)
    if suggestion is not None:
        ax.axvline(math.log10(suggestion), color="red", linestyle="--", label=f"suggested lr {suggestion:.3g}")
        ax.legend()
    ax.set(xlabel="log10(learning rate)", ylabel="training loss (smoothed)", title="learning-rate sweep")
    ax.grid()
    return fig


def knob_figure(points: list[tuple[float, float]], knob: str) -> Figure:
    """Val loss of each job of a sweep against one knob."""
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot([x for x, _ in points], [y for _, y in points], "o")
    ax.set(xlabel=knob, ylabel="val loss (nats/char)", title=f"sweep: val loss against {knob}")
    ax.grid()
    return fig


def _label_points(ax: Any, points: list[tuple[float, float, str, Any]]) -> None:
    """A label in its point's colour beside each point, inside the axes and over no point or earlier label if it can."""
    renderer = ax.figure.canvas.get_renderer()
    inside, half = ax.get_window_extent(renderer), renderer.points_to_pixels(MARKER_SIZE**0.5 / 2)
    centres = ax.transData.transform([(x, y) for x, y, _, _ in points])
    placed = [Bbox.from_extents(cx - half, cy - half, cx + half, cy + half) for cx, cy in centres]
    for x, y, text, color in points:
        for i, (offset, ha) in enumerate([*LABEL_PLACES, LABEL_PLACES[0]]):  # last: no free place, so the first
            note = ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, ha=ha, fontsize=8, color=color)
            box = note.get_window_extent(renderer)
            fits = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
            if i == len(LABEL_PLACES) or (fits and not any(box.overlaps(other) for other in placed)):
                break
            note.remove()
        placed.append(box)


def family_figure(rows: list[dict], subtitle: str | None = None) -> Figure:
    """Val loss against parameters and against training time, a labelled point per run; `subtitle`: the data line."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    panels = ((axes[0], "num_params", "parameters"), (axes[1], "train_time_s", "training time (s)"))
    for ax, key, axis_name in panels:
        for row in rows:
            ax.scatter(row[key], row["val_loss"], s=MARKER_SIZE)
        ax.set(xscale="log", xlabel=f"{axis_name} (log scale)")
        ax.margins(x=0.08, y=0.08)
        if len(values := {row[key] for row in rows}) == 1 and (value := values.pop()) > 0:
            ax.set_xlim(value / 3, value * 3)  # one x value: centred (log autoscale would put it at the edge)
        ax.grid(which="both", alpha=0.3)
    axes[0].set_ylabel("val loss (nats/char, whole split)")
    title = "the model family on one metric: val loss against size and against training time"
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""))
    fig.tight_layout()
    names = [row["run"].removeprefix("experiment=") for row in rows]
    for ax, key, _ in panels:  # after the layout, so that the labels are placed where they will be drawn
        colors = [dot.get_facecolor()[0] for dot in ax.collections]
        _label_points(ax, [(row[key], row["val_loss"], n, c) for row, n, c in zip(rows, names, colors, strict=True)])
    return fig
