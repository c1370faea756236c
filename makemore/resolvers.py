"""The resolvers conf/*.yaml uses: derived values, absolute paths, and what a run is called (label, directory)."""

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

# Overrides that do not tell runs apart: where things are read and written, and how a run continues.
_UNNAMING_KEYS = ("hydra", "data.path", "resume", "ckpt_path", "name", "tags", "threads", "print_config")


def register_resolvers() -> None:
    resolvers = {
        "fraction_of": lambda frac, total: int(float(frac) * int(total)),
        "epochs_if_fraction": lambda interval: 1 if isinstance(interval, float) else None,
        "run_label": lambda *, _root_: run_label(_root_),
        # <date>/<time>, or <name>/<date>_<time> for a named run (under outputs_dir): named runs gather together
        "run_dir_of": lambda name, date, time: f"{name}/{date}_{time}" if name else f"{date}/{time}",
        "tag_dict": lambda tags: OmegaConf.create({str(tag): "" for tag in tags or []}),
        "sqlite_uri": lambda path: f"sqlite:///{to_absolute_path(path)}",
        "abspath": to_absolute_path,
    }
    for name, resolver in resolvers.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)


def run_label(cfg: DictConfig) -> str:
    """What the loggers call this run: `name=` and/or its (in a sweep: swept) overrides, else the model's name."""
    from makemore.sweep import SWEPT_KEYS_FILE

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    overrides = [o.lstrip("+~") for o in (hydra.overrides.task if hydra else [])]
    overrides = [o for o in overrides if not o.split("=")[0].startswith(_UNNAMING_KEYS)]
    swept = Path(hydra.sweep.dir) / SWEPT_KEYS_FILE if hydra and hydra.mode == RunMode.MULTIRUN else None
    if swept is not None and swept.is_file():
        keys = set(json.loads(swept.read_text()))
        job = ",".join(o for o in overrides if o.split("=")[0] in keys)
        label = f"{cfg.name}:{job}" if cfg.get("name") else job
    else:
        label = str(cfg.name) if cfg.get("name") else ",".join(overrides)
    return (label or str(cfg.model.name)).replace("/", "_").replace("\\", "_")[:120]
