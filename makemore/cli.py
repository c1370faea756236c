"""Entry-point glue: a user error becomes one line on stderr and exit status 2, not a traceback."""

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from makemore.errors import MakemoreError

T = TypeVar("T")
log = logging.getLogger("makemore")


def report_user_errors(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except MakemoreError as e:
            log.debug("user error", exc_info=True)  # the full story stays in the run's log file
            print(f"makemore: error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper
