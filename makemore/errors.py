"""Errors caused by the user's input or config, reported as one line instead of a traceback (makemore.console)."""


class MakemoreError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""

    exit_code = 2


class DataError(MakemoreError):
    """The data file is missing, unreadable or unusable."""


class ConfigError(MakemoreError):
    """A config value is out of its allowed range."""


class TrainingDiverged(MakemoreError):
    """The loss became NaN or infinite: the learning rate is too high for this model."""


class TrainingInterrupted(MakemoreError):
    """Ctrl-C or SIGTERM stopped the command (training: after saving last.ckpt); the exit status is 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class JobsFailed(MakemoreError):
    """Some jobs of a multirun failed; the others ran and the summary shows each failure."""

    exit_code = 1


class CheckpointWriteError(MakemoreError):
    """A checkpoint could not be written (disk full, read-only directory); the previous one is intact."""
