"""Silence what third-party libraries print that a makemore user cannot act on, narrowly: by logger,
message and module, never all warnings or all of a library's log."""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_NOISE = (
    "💡 Tip:",  # Lightning's advertisements for its cloud products
    "TPU available: False",  # no TPU: nothing to act on (the GPU line stays: it says whether a GPU is used)
    "`Trainer.fit` stopped: `max_steps=",  # the end of every run, which the run's summary says ("done: ...")
    "Experiment with name",  # MLflow: the first run of an experiment creates it, as it should
    "Restoring states from the checkpoint path at",  # a resume (train.py says "continuing from") or lr_find's own
    "Restored all states from the checkpoint",  # temporary checkpoint, which it writes, reads back and deletes
    "`weights_only` was not set",  # that read-back (the run's own file); every checkpoint a user gives is weights-only
    "Running in `fast_dev_run` mode",  # the run's own fast_dev_run line says what ran and that nothing is saved
)


_NOISY_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.loggers.mlflow",
    "lightning.pytorch.trainer.connectors.checkpoint_connector",
)


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE)


def quiet_third_party_output() -> None:
    """Call after importing Lightning (its import installs the console handler removed here)."""
    # Lightning's package logger prints each record to the console itself *and* passes it on to the root
    # logger, whose handlers (Hydra's console and train.log) print it again: keep the root's.
    lightning_logger = logging.getLogger("lightning")
    for handler in list(lightning_logger.handlers):
        if type(handler) is logging.StreamHandler:
            lightning_logger.removeHandler(handler)
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _not_noise not in logger.filters:
            logger.addFilter(_not_noise)
    # ckpt_path= into a new run dir: best.ckpt is chosen anew there, as the README says.
    warnings.filterwarnings(
        "ignore",
        message=r"The dirpath has changed from",
        category=UserWarning,
        module=r"lightning\.pytorch\.callbacks\.model_checkpoint",
    )
    # An epoch shorter than log_every_n_steps on a small file: makemore logs across epochs (every N optimizer
    # steps of the run), so the train loss is logged all the same.
    warnings.filterwarnings(
        "ignore",
        message=r"The number of training batches \(\d+\) is smaller than the logging interval",
        module=r"lightning\.pytorch\.loops\.fit_loop",
    )
    # Lightning's own use of a torch API that torch deprecated; nothing a user can change.
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )


@contextmanager
def logging_kept() -> Iterator[None]:
    """Around building the loggers: MLflow creates a new tracking database through alembic, whose
    logging.config.fileConfig replaces the root logger's handlers (Hydra's console and train.log) and sets its
    level to WARNING, which silences the rest of the run's own log. Keep its migration chatter out, then put
    the root logger back as it was (a closed FileHandler reopens, appending, on its next record)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        root.handlers[:] = handlers
        root.setLevel(level)
