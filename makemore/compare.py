"""The family table: runs of any models side by side, read back from their run directories.

Every run's losses are the mean NLL per character over the same targets of the same split (see
makemore.data.views), so a bigram, the MLP and a Transformer sit in one table: if they were trained on the
same data. metrics.json records it (the file's path and sha256, and the targets per split), and a table of
runs on different data is refused unless asked for (`mixed`), when a column says which data each run had.
"""

import json
import os
from pathlib import Path
from typing import Any

from makemore import tables
from makemore.errors import MakemoreError

COLUMNS = ["run", "model", "num_params", "steps", "train_time_s", "train_loss", "val_loss", "test_loss"]
HEADERS = ["run", "model", "parameters", "steps", "train time (s)", "train", "val", "test"]
MIXED_FIX = "pass --mixed to put them in one table anyway"


def run_files(paths: list[Path]) -> list[Path]:
    """Each path's metrics.json, or an ensemble's eval.json (scripts/eval.py ckpt='[...]'; the file itself may be
    given), or the metrics.json files of a sweep directory's jobs."""
    found = []
    for path in paths:
        if path.is_file() and "members" in _read(path):
            found.append(path)
        elif (path / "metrics.json").is_file():
            found.append(path / "metrics.json")
        elif (path / "eval.json").is_file() and "members" in _read(path / "eval.json"):
            found.append(path / "eval.json")
        elif path.is_dir() and (jobs := sorted(path.glob("*/metrics.json"))):
            found += jobs
        else:
            raise MakemoreError(
                f"{path}: no metrics.json there or in its subdirectories, nor an ensemble's eval.json; pass finished "
                "run dirs"
            )
    return found


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def family_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per run or ensemble, lowest val loss first; row["data"] is the data record (path, sha256) with
    its targets per split, or None for a run that records none."""
    rows = []
    for file in run_files(paths):
        metrics = json.loads(file.read_text())
        row = {"run": metrics.get("name") or file.parent.name, **{k: metrics.get(k) for k in COLUMNS[1:]}}
        data = metrics.get("data")
        rows.append({**row, "data": data and {**data, "split_sizes": metrics.get("split_sizes")}})
    return sorted(rows, key=lambda row: row["val_loss"])


def _identity(data: dict[str, Any] | None) -> tuple | None:
    """The same bytes cut into the same splits: the same targets (the same file may lie at two paths)."""
    return data and (data["sha256"], tuple((data["split_sizes"] or {}).values()))


def _shown(data: dict[str, Any] | None) -> str:
    if data is None:
        return "no data recorded (metrics.json of an older makemore)"
    relative = os.path.relpath(data["path"])
    return data["path"] if relative.startswith("..") else relative


def is_mixed(rows: list[dict[str, Any]]) -> bool:
    """Whether the runs were scored on different targets (another file, another split of it, or unknown)."""
    return len({_identity(row["data"]) for row in rows}) > 1 or rows[0]["data"] is None


def data_line(rows: list[dict[str, Any]]) -> str:
    """One line saying which data every run had: "data: <path> (N train / N val / N test targets)".

    A MakemoreError names the first two runs whose data differ, and the fix (--mixed)."""
    first = rows[0]
    for row in rows:
        if row["data"] is None or _identity(row["data"]) != _identity(first["data"]):
            raise MakemoreError(
                f"the runs were trained on different data: {_shown(first['data'])} ({first['run']}) and "
                f"{_shown(row['data'])} ({row['run']}), so their losses are not comparable; {MIXED_FIX}"
            )
    sizes = first["data"]["split_sizes"]
    targets = " / ".join(f"{n:,} {split}" for split, n in sizes.items()) + " targets"
    others = sorted({_shown(row["data"]) for row in rows} - {_shown(first["data"])})
    also = f"; the same file as {', '.join(others)}" if others else ""
    return f"data: {_shown(first['data'])} ({targets}{also})"


def mixed_line(rows: list[dict[str, Any]]) -> str:
    """The line above a table of runs on different data (--mixed)."""
    kinds = len({_identity(row["data"]) for row in rows})
    return f"data: {kinds} different data files or splits (see the data column): their losses are not comparable"


def data_labels(rows: list[dict[str, Any]]) -> list[str]:
    """Each run's data as the data column shows it: its path, and its sha256 where runs on different data
    share a path (the file changed between them)."""
    paths = {}
    for row in rows:
        paths.setdefault(_shown(row["data"]), set()).add(_identity(row["data"]))
    labels = []
    for row in rows:
        shown = _shown(row["data"])
        clash = len(paths[shown]) > 1 and row["data"] is not None
        labels.append(f"{shown} (sha256 {row['data']['sha256'][:12]})" if clash else shown)
    return labels


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column.endswith("_loss"):
        return f"{value:.4f}"
    if column == "train_time_s":
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(rows: list[dict[str, Any]], data_column: bool = False) -> str:
    """The family table; `data_column` adds each run's data file (for a table of runs on different data)."""
    cells = [[_cell(c, row[c]) for c in COLUMNS] for row in rows]
    if not data_column:
        return tables.markdown_table(HEADERS, cells)
    return tables.markdown_table([*HEADERS, "data"], [[*c, d] for c, d in zip(cells, data_labels(rows), strict=True)])
