"""The one markdown-table renderer, shared by the sweep summary and the family table."""

from collections.abc import Iterable, Sequence


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub markdown table of already formatted cells, one line per row; a `|` inside a cell is escaped
    so that it cannot split the cell."""
    lines = [_line(headers), "|" + "---|" * len(headers)]
    lines += [_line(cells) for cells in rows]
    return "\n".join(lines) + "\n"


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
