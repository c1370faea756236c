"""Sweep summaries: a row per job of a multirun, best val loss first, rebuilt from the job directories."""

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from makemore import tables
from makemore.console import exit_with
from makemore.errors import JobsFailed
from makemore.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

LOSSES = ["train_loss", "val_loss", "test_loss"]
COLUMNS = ["job", "status", "overrides", "num_params", "steps", *LOSSES, "train_time_s", "error"]
FAILURE_FILE = "failure.json"  # in a failed job's directory: its error, for the summary
SWEPT_KEYS_FILE = "swept_keys.json"  # in the sweep directory: the keys its jobs differ in, for their run names


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """summary.md: the rows under the COLUMNS names, blank where a job has no value."""
    return tables.markdown_table(COLUMNS, ([tables.cell(c, row.get(c)) for c in COLUMNS] for row in rows))


def write_summary(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write summary.csv and summary.md in `sweep_dir`, a row per job directory, and return the rows."""
    rows = []
    for job_dir in sorted(Path(sweep_dir).iterdir(), key=lambda p: (len(p.name), p.name)):
        if not (overrides_file := job_dir / ".hydra" / "overrides.yaml").is_file():
            continue
        row: dict[str, Any] = {"job": job_dir.name, "overrides": yaml.safe_load(overrides_file.read_text()) or []}
        if (metrics_file := job_dir / "metrics.json").is_file():
            metrics = json.loads(metrics_file.read_text())
            row.update({k: metrics[k] for k in COLUMNS if k in metrics}, status="ok")
        elif (failure_file := job_dir / FAILURE_FILE).is_file():
            row.update(status="failed", error=json.loads(failure_file.read_text())["error"])
        else:
            row["status"] = "unfinished"
        rows.append(row)
    shared = set.intersection(*(set(r["overrides"]) for r in rows)) if len(rows) > 1 else set()
    for row in rows:  # what tells the jobs apart: the overrides shared by every job are left out
        row["overrides"] = " ".join(o for o in row["overrides"] if o not in shared)
    rows.sort(key=lambda r: (r["status"] != "ok", r.get("val_loss") or 0.0))
    csv_text = io.StringIO()
    writer = csv.DictWriter(csv_text, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(sweep_dir, "summary.csv"), csv_text.getvalue())
    atomic_write_text(Path(sweep_dir, "summary.md"), markdown_table(rows))
    return rows


class SweepSummary(Callback):
    """Hydra callback: notes the swept keys, records failed jobs, updates the summary per job, prints it at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        swept = [o.get_key_element().lstrip("+~") for o in overrides if o.is_sweep_override()]
        swept += list((config.hydra.sweeper.get("params") or {}).keys())  # an Optuna search's parameters
        atomic_write_json(Path(config.hydra.sweep.dir) / SWEPT_KEYS_FILE, sorted(set(swept)))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        if job_return.status == JobStatus.FAILED:  # not a user error (those return NaN): a bug, with its traceback
            error = job_return._return_value  # the exception; .return_value would re-raise it
            failure = {"error": f"{type(error).__name__}: {error}"}
            atomic_write_json(Path(config.hydra.runtime.output_dir) / FAILURE_FILE, failure)
        write_summary(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        rows = write_summary(sweep_dir)
        log.info("sweep summary (%s):\n%s", sweep_dir / "summary.md", markdown_table(rows))
        if failed := [row for row in rows if row["status"] == "failed"]:
            exit_with(JobsFailed(f"{len(failed)} of {len(rows)} jobs failed (see the failed rows above)"))
