"""Entry-point glue: a user error becomes one line on stderr and exit status 2, not a traceback."""

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from makemore.errors import MakemoreError

T = TypeVar("T")
log = logging.getLogger("makemore")


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def report_user_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """In a single run, exit 2 with the message. In a multirun, log it and let Hydra mark this job
    failed, so the other jobs still run and the sweep summary shows the error."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except MakemoreError as e:
            if _in_multirun():
                log.error("job failed: %s", e)
                raise
            log.debug("user error", exc_info=True)  # the full story stays in the run's log file
            print(f"makemore: error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper
