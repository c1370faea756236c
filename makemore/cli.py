"""Entry-point glue: a user error becomes one line on stderr and a non-zero exit, not a traceback (in a
multirun, a failed job's line and a `failed` row while the other jobs go on); `resume=<run dir>` becomes
that run's own overrides."""

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from makemore.errors import ConfigError, MakemoreError, exit_with
from makemore.sweep import FAILURE_FILE

T = TypeVar("T")
log = logging.getLogger("makemore")


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def report_user_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """In a single run, exit with the message and the error's status (2; 128 + signal when interrupted).
    In a multirun, print one line naming the job and the error, record it for the sweep summary and
    return NaN (an Optuna trial then counts as failed), so the other jobs still run."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T | float:
        try:
            return fn(*args, **kwargs)
        except (MakemoreError, OmegaConfBaseException) as e:
            error = e if isinstance(e, MakemoreError) else ConfigError(describe_config_error(e))
            log.debug("user error", exc_info=True)
            if _in_multirun():
                return _record_failed_job(error)
            exit_with(error)

    return wrapper


def _record_failed_job(error: MakemoreError) -> float:
    hydra = HydraConfig.get()
    overrides = " ".join(hydra.overrides.task)
    log.error("job %s (%s) failed: %s", hydra.job.num, overrides, error)
    failure = {"error": f"{type(error).__name__}: {error}"}
    Path(hydra.runtime.output_dir, FAILURE_FILE).write_text(json.dumps(failure) + "\n")
    return float("nan")


def describe_config_error(error: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line reports as one line; an unknown key says so and how to list keys."""
    cause = error.__cause__ if error.__cause__ is not None else error
    if "not in struct" in str(cause) and getattr(cause, "full_key", None):
        return (
            f"unknown key '{cause.full_key}': check its spelling (python scripts/train.py --cfg job prints "
            "every key; a new key needs a leading +)"
        )
    text = str(error).split("Config search path:")[0]  # Hydra's list of where it looked: noise to a user
    skip = ("full_key:", "object_type", "reference_type", "Set the environment variable HYDRA_FULL_ERROR")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(skip)]
    return " ".join(lines).removeprefix("In 'train': ")


def run(main: Callable[[], Any]) -> None:
    """Call a @hydra.main entry point; Hydra's own errors (an unknown key, an override it cannot parse, a
    missing config option) become one line and exit status 2 instead of Hydra's report."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises its errors instead of printing them itself
    sys.argv = hydra_habits(sys.argv)
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        exit_with(ConfigError(describe_config_error(e)))


CONFIG_GROUPS = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "conf").iterdir() if p.is_dir())


def hydra_habits(argv: list[str]) -> list[str]:
    """`GROUP=null` drops a config group, as `~GROUP` does (Hydra itself only takes the second), and
    `+GROUP=option` for a group already in the defaults list says to drop the +."""
    out = [argv[0]]
    for arg in argv[1:]:
        key, _, value = arg.partition("=")
        if key in CONFIG_GROUPS and value == "null":
            arg = f"~{key}"
        elif key.startswith("+") and key[1:] in CONFIG_GROUPS and not key.startswith("++"):
            exit_with(ConfigError(f"{key[1:]} is a config group already in the defaults list: use {arg[1:]} (no +)"))
        out.append(arg)
    return out


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
