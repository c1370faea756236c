"""The family table: runs of any models side by side, read back from their run directories.

Every run's losses are the mean NLL per character over the same targets of the same split (see
makemore.data.views), so a bigram, the MLP and a Transformer sit in one table.
"""

import json
from pathlib import Path
from typing import Any

from makemore.errors import MakemoreError

COLUMNS = ["run", "model", "num_params", "steps", "train_time_s", "train_loss", "val_loss", "test_loss"]
HEADERS = ["run", "model", "parameters", "steps", "train time (s)", "train", "val", "test"]


def run_dirs(paths: list[Path]) -> list[Path]:
    """Each path that holds a metrics.json, or the job directories of a sweep directory."""
    found = []
    for path in paths:
        if (path / "metrics.json").is_file():
            found.append(path)
        elif path.is_dir() and (jobs := sorted(p.parent for p in path.glob("*/metrics.json"))):
            found += jobs
        else:
            raise MakemoreError(f"{path}: no metrics.json there or in its subdirectories; pass finished run dirs")
    return found


def family_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """One row per run, lowest val loss first."""
    rows = []
    for run_dir in run_dirs(paths):
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rows.append({"run": metrics.get("name") or run_dir.name, **{k: metrics.get(k) for k in COLUMNS[1:]}})
    return sorted(rows, key=lambda row: row["val_loss"])


def _cell(column: str, value: Any) -> str:
    if column.endswith("_loss"):
        return f"{value:.4f}"
    if column == "train_time_s":
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(_cell(c, row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"
