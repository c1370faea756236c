"""Entry-point glue: a user error is one line on stderr and a non-zero exit (a multirun's job: a failed row)."""

import errno
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf.errors import OmegaConfBaseException

from makemore.console import exit_with
from makemore.errors import ConfigError, MakemoreError, TrainingInterrupted
from makemore.sweep import FAILURE_FILE

log = logging.getLogger("makemore")
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # the OSErrors that are a full disk (Hydra's MissingConfigException is one)
CONFIG_GROUPS = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "conf").iterdir() if p.is_dir())


def report_user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A run exits with the error's line; a multirun's job logs and records it, returning NaN so the others run."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (MakemoreError, OmegaConfBaseException, OSError) as e:
            if isinstance(e, OSError) and e.errno not in FULL_DISK:
                raise
            error = e if isinstance(e, MakemoreError) else ConfigError(describe_config_error(e))
            log.debug("user error", exc_info=True)
            if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
                exit_with(error)
            hydra = HydraConfig.get()
            log.error("job %s (%s) failed: %s", hydra.job.num, " ".join(hydra.overrides.task), error)
            failure = {"error": f"{type(error).__name__}: {error}"}
            Path(hydra.runtime.output_dir, FAILURE_FILE).write_text(json.dumps(failure) + "\n")
            return float("nan")

    return wrapper


def describe_config_error(error: BaseException) -> str:
    """Hydra's and OmegaConf's reports, or a full disk, as one line saying what to do."""
    if isinstance(error, OSError) and error.errno in FULL_DISK:
        where = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else "<run dir>"
        return (
            f"no space left on the device{f' writing {error.filename}' if error.filename else ''}: free space, then "
            f"continue with python scripts/train.py resume={where} (its last.ckpt is whole)"
        )
    cause = error.__cause__ or error
    if "not in struct" in str(cause) and getattr(cause, "full_key", None):
        return (
            f"unknown key '{cause.full_key}': check its spelling (python scripts/train.py --cfg job prints "
            "every key; a new key needs a leading +)"
        )
    text = str(error).split("Config search path:")[0]  # Hydra's list of where it looked: noise to a user
    skip = ("full_key:", "object_type", "reference_type", "Set the environment variable HYDRA_FULL_ERROR")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(skip)]
    if "mismatched input '='" in text:  # a value with '=' in it, as Lightning's epoch=0-step=500.ckpt
        keys = [arg.split("=")[0] for arg in sys.argv[1:] if arg.count("=") > 1]
        lines += [f"(a value holding '=' must be quoted: {key}='...')" for key in keys[:1]]
    return " ".join(lines).removeprefix("In 'train': ")


def run(main: Callable[[], Any]) -> None:
    """Call a @hydra.main entry point: `GROUP=null` means `~GROUP`, `+GROUP=...` is refused, Hydra's errors one line."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra then raises its errors instead of printing them itself
    for i, arg in enumerate(sys.argv[1:], 1):
        key, _, value = arg.partition("=")
        if key in CONFIG_GROUPS and value == "null":
            sys.argv[i] = f"~{key}"
        elif key.startswith("+") and key[1:] in CONFIG_GROUPS:
            exit_with(ConfigError(f"{key[1:]} is a config group already in the defaults list: use {arg[1:]} (no +)"))
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        exit_with(ConfigError(describe_config_error(e)))
    except KeyboardInterrupt:  # while starting or finishing (a training run stops itself: LastCheckpoint), or twice
        exit_with(TrainingInterrupted("interrupted by Ctrl-C", signal.SIGINT))


def expand_resume(argv: list[str]) -> list[str]:
    """`resume=DIR` -> DIR's run's overrides, `hydra.run.dir=DIR`, then the given arguments (a later one wins)."""
    run_dir = next((a.removeprefix("resume=") for a in reversed(argv[1:]) if a.startswith("resume=")), None)
    if run_dir is None:
        return argv
    recorded = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not recorded.is_file():
        hint = "pass a directory that scripts/train.py wrote, or ckpt_path=<file.ckpt>"
        exit_with(ConfigError(f"resume={run_dir}: not a run directory (no {recorded}); {hint}"))
    quoted_dir = run_dir.replace("\\", "\\\\").replace("'", "\\'")
    earlier = [o for o in yaml.safe_load(recorded.read_text()) or [] if not o.startswith("ckpt_path=")]
    overrides = [*earlier, f"hydra.run.dir='{quoted_dir}'", *argv[1:]]
    return [argv[0], *{o.split("=", 1)[0].lstrip("+~"): o for o in overrides}.values()]
