"""The one markdown-table renderer, shared by the sweep summary, the family table and the ensemble table."""

from collections.abc import Iterable, Sequence
from typing import Any


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table of formatted cells; a `|` inside a cell is escaped so that it cannot split it."""
    lines = ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in [headers, *rows]]
    return "\n".join([lines[0], "|" + "---|" * len(headers), *lines[1:]]) + "\n"


def cell(column: str, value: Any, sep: str = "") -> str:
    """A metric as a table shows it: losses to 4 decimals, times to 1, blank if missing; sep="," groups thousands."""
    if value is None:
        return ""
    if column.endswith("_loss"):
        return f"{value:.4f}"
    if column == "train_time_s":
        return f"{value:{sep}.1f}"
    return f"{value:{sep}}" if isinstance(value, int) else str(value)
