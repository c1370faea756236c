"""Plain config values: what a model, optimizer or scheduler config may hold, in a run and in a checkpoint.

A checkpoint is data, never code. Its stored config is rebuilt through this project's fixed registries
(makemore.models.MODELS, makemore.training.optim), so it may hold only names those registries know and
plain values: no `_target_` (Hydra would import and call whatever it names), no objects.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from makemore.errors import ConfigError

PLAIN_SCALARS = (bool, int, float, str, type(None))


def check_plain(value: Any, where: str) -> None:
    """Refuse anything but plain scalars, lists of them and string-keyed dicts of them, and any `_target_`."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: key {key!r} is not a string; configs hold plain named values only")
            if key == "_target_":
                raise ConfigError(
                    f"{where}._target_ names code to run ({str(item)[:80]!r}); makemore builds its parts from its own "
                    "registries by name, so a config or checkpoint may not name code"
                )
            check_plain(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, PLAIN_SCALARS):
        raise ConfigError(
            f"{where} holds a {type(value).__name__}, not a plain value (number, string, bool, null or a list of them)"
        )


def check_keys(config: Mapping[str, Any], allowed: Iterable[str], where: str, what: str) -> None:
    """Refuse keys outside `allowed`, naming the first and listing what is allowed."""
    allowed = list(allowed)
    unknown = [key for key in config if key not in allowed]
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]} is not a setting of {what}; its settings are: {', '.join(allowed)}")
