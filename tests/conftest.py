import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = [REPO / "data" / "names.txt", REPO.parent / "shared" / "data" / "names.txt"]


@pytest.fixture(scope="session")
def names_path() -> Path:
    """names.txt from the data cache, or the copy in ../shared (as CI lays it out)."""
    for path in CANDIDATES:
        if path.exists():
            return path
    pytest.fail(f"names.txt not found in {[str(p) for p in CANDIDATES]}: copy it to data/names.txt")


def run_script(
    script: str, *args: str, cwd: Path = REPO, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run scripts/<script> as a user would, in a subprocess (warnings shown, as a user sees them)."""
    env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


SHORT_RUN = ["trainer.max_steps=250", "val_every=100", "log_every=50", "steps_per_call=50"]


@pytest.fixture(scope="session")
def short_run(names_path, tmp_path_factory) -> Path:
    """One short real training run on names.txt, shared by the tests that read its outputs."""
    run_dir = tmp_path_factory.mktemp("run") / "short run"  # a space in the path, on purpose
    result = run_script("train.py", f"data.path={names_path}", *SHORT_RUN, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def summary_rows(sweep: Path) -> list[dict]:
    """The rows of a sweep's summary.csv."""
    with (sweep / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def tensorboard_dir(run_dir: Path) -> Path:
    """The run's one TensorBoard run, tensorboard/<run name>."""
    (run,) = [p for p in (run_dir / "tensorboard").iterdir() if p.is_dir()]
    return run
