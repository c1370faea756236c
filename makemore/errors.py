"""Errors caused by the user's input or config, reported as one line instead of a traceback."""


class MakemoreError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""


class DataError(MakemoreError):
    """The data file is missing, unreadable or unusable."""


class ConfigError(MakemoreError):
    """A config value is out of its allowed range."""


class TrainingDiverged(MakemoreError):
    """The loss became NaN or infinite: the learning rate is too high for this model."""
