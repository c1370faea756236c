"""Entry-point glue: a user error becomes one line on stderr and a non-zero exit, not a traceback;
`resume=<run dir>` becomes that run's own overrides."""

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from makemore.errors import ConfigError, MakemoreError

T = TypeVar("T")
log = logging.getLogger("makemore")


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def exit_with(error: MakemoreError) -> NoReturn:
    """The one way a user error ends a command: `makemore: error: ...` on stderr and the error's status."""
    newline = "\n" if sys.stderr.isatty() else ""  # off the end of a progress bar's line
    print(f"{newline}makemore: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)


def report_user_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """In a single run, exit with the message and the error's status (2; 128 + signal when interrupted).
    In a multirun, log it and let Hydra mark this job failed, so the other jobs still run and the sweep
    summary shows the error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except MakemoreError as e:
            if _in_multirun():
                log.error("job failed: %s", e)
                raise
            log.debug("user error", exc_info=True)  # the full story stays in the run's log file
            exit_with(e)

    return wrapper


def expand_resume(argv: list[str]) -> list[str]:
    """`resume=DIR` -> the overrides DIR's run was started with, then `hydra.run.dir=DIR`, then the given
    arguments (a later override of a key wins): the run continues with its own config, in its own
    directory, without the user retyping either."""
    given = [a for a in argv[1:] if a.startswith("resume=")]
    if not given:
        return argv
    run_dir = given[-1].split("=", 1)[1]
    recorded = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not recorded.is_file():
        exit_with(
            ConfigError(
                f"resume={run_dir}: not a run directory (no {recorded}); pass a directory that "
                "scripts/train.py wrote, or ckpt_path=<file.ckpt>"
            )
        )
    quoted_dir = run_dir.replace("\\", "\\\\").replace("'", "\\'")
    earlier = [o for o in yaml.safe_load(recorded.read_text()) or [] if not o.startswith("ckpt_path=")]
    merged: dict[str, str] = {}
    for override in [*earlier, f"hydra.run.dir='{quoted_dir}'", *argv[1:]]:
        merged[override.split("=", 1)[0].lstrip("+~")] = override
    return [argv[0], *merged.values()]
