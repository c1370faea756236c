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


def run_script(script: str, *args: str, cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run scripts/<script> as a user would, in a subprocess."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
