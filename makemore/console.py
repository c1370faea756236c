"""What a makemore process prints: which process speaks, a user error as one line, third-party noise silenced."""

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from makemore.errors import MakemoreError

_NOISE = (
    "💡 Tip:",  # Lightning's advertisements for its cloud products
    "TPU available: False",  # no TPU: nothing to act on
    "GPU available: False",  # nor on a machine without a GPU (one that has a GPU still says whether it is used)
    "`Trainer.fit` stopped: `max_",  # max_steps or max_epochs reached: the run's summary says it ("done: ...")
    "Loading `train_dataloader` to estimate",  # Lightning's note on sizing the schedule: nothing to act on
    "Experiment with name",  # MLflow: the first run of an experiment creates it, as it should
    "Restoring states from the checkpoint path at",  # a resume (train.py says "continuing from") or lr_find's own
    "Restored all states from the checkpoint",  # temporary checkpoint, which it writes, reads back and deletes
    "`weights_only` was not set",  # that read-back (the run's own file); every checkpoint a user gives is weights-only
    "Running in `fast_dev_run` mode",  # the run's own fast_dev_run line says what ran and that nothing is saved
)
_NOISY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
_NOISY_LOGGERS += ("lightning.pytorch.loggers.mlflow", "lightning.pytorch.trainer.connectors.checkpoint_connector")
_SHORT_EPOCH = r"The number of training batches \(\d+\) is smaller than the logging interval"
_NOISY_WARNINGS = (  # (message, category, module)
    # ckpt_path= into a new run dir: best.ckpt is chosen anew there, as the README says.
    (r"The dirpath has changed from", UserWarning, r"lightning\.pytorch\.callbacks\.model_checkpoint"),
    (_SHORT_EPOCH, Warning, r"lightning\.pytorch\.loops\.fit_loop"),  # makemore logs every N steps, across epochs
    # Lightning's own use of a torch API that torch deprecated; nothing a user can change.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
)


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE)


def quiet_third_party_output() -> None:
    """Call after importing Lightning (its import installs the console handler removed here)."""
    # Lightning's logger prints each record itself and passes it to the root's handlers: keep the root's.
    lightning = logging.getLogger("lightning")
    lightning.handlers[:] = [h for h in lightning.handlers if type(h) is not logging.StreamHandler]
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).addFilter(_not_noise)  # once: addFilter skips a filter it already has
    for message, category, module in _NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


@contextmanager
def logging_kept() -> Iterator[None]:
    """Around building the loggers: a new MLflow database's alembic replaces the root logger's setup; put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)


def first_process() -> bool:
    """Not a data-parallel worker (LOCAL_RANK > 0, set by the launcher): the process that prints and writes results."""
    return int(os.environ.get("LOCAL_RANK", 0)) == 0


def exit_with(error: MakemoreError) -> NoReturn:
    """End a command with `makemore: error: ...` on stderr and the error's status (only the first process says it)."""
    if first_process():
        newline = "\n" if sys.stderr.isatty() else ""  # off the end of a progress bar's line
        print(f"{newline}makemore: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
