"""The family table: finished runs side by side; runs on different data are refused unless `mixed`."""

import json
import os
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError
from makemore.tables import cell, markdown_table

COLUMNS = ["run", "model", "num_params", "steps", "train_time_s", "train_loss", "val_loss", "test_loss"]
HEADERS = ["run", "model", "parameters", "steps", "train time (s)", "train", "val", "test"]
MIXED_FIX = "pass --mixed to put them in one table anyway"


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def family_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """A row per run, ensemble (eval.json) or sweep job, lowest val loss first; row["data"]: the data record or None."""
    files = []
    for path in paths:
        if "members" in _read(path):
            files.append(path)
        elif (path / "metrics.json").is_file():
            files.append(path / "metrics.json")
        elif "members" in _read(path / "eval.json"):
            files.append(path / "eval.json")
        elif path.is_dir() and (jobs := sorted(path.glob("*/metrics.json"))):
            files += jobs
        else:
            raise MakemoreError(
                f"{path}: no metrics.json there or in its subdirectories, nor an ensemble's eval.json; pass finished "
                "run dirs"
            )
    rows = []
    for file in files:
        metrics = json.loads(file.read_text())
        row = {k: metrics.get(k) for k in COLUMNS[1:]}
        data = metrics.get("data") and {**metrics["data"], "split_sizes": metrics.get("split_sizes")}
        rows.append({"run": metrics.get("name") or file.parent.name, **row, "data": data})
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


def data_line(rows: list[dict[str, Any]], mixed: bool = False) -> str:
    """The line "data: <path> (N train / N val / N test targets)"; runs on different data are refused unless `mixed`."""
    first = rows[0]
    if is_mixed(rows) and mixed:
        kinds = len({_identity(row["data"]) for row in rows})
        return f"data: {kinds} different data files or splits (see the data column): their losses are not comparable"
    for row in rows:
        if row["data"] is None or _identity(row["data"]) != _identity(first["data"]):
            raise MakemoreError(
                f"the runs were trained on different data: {_shown(first['data'])} ({first['run']}) and "
                f"{_shown(row['data'])} ({row['run']}), so their losses are not comparable; {MIXED_FIX}"
            )
    targets = " / ".join(f"{n:,} {split}" for split, n in first["data"]["split_sizes"].items())
    others = sorted({_shown(row["data"]) for row in rows} - {_shown(first["data"])})
    also = f"; the same file as {', '.join(others)}" if others else ""
    return f"data: {_shown(first['data'])} ({targets} targets{also})"


def markdown(rows: list[dict[str, Any]], data_column: bool = False) -> str:
    """The family table; `data_column` adds each run's data path (and sha256 where differing data share a path)."""
    cells = [[cell(c, row[c], sep=",") for c in COLUMNS] for row in rows]
    if not data_column:
        return markdown_table(HEADERS, cells)
    for cells_of_run, data in zip(cells, (row["data"] for row in rows), strict=True):
        clash = data is not None and len({_identity(r["data"]) for r in rows if _shown(r["data"]) == _shown(data)}) > 1
        cells_of_run.append(f"{_shown(data)} (sha256 {data['sha256'][:12]})" if clash else _shown(data))
    return markdown_table([*HEADERS, "data"], cells)
