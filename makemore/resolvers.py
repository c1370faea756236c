"""The resolvers conf/*.yaml uses: derived values (`${fraction_of:0.5,${trainer.max_steps}}`), absolute paths,
and what a run is called (its label in every logger, its directory)."""

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf


def run_dir_of(name: str | None, date: str, time: str) -> str:
    """<date>/<time>, or <name>/<date>_<time> for a named run (under outputs_dir): named runs gather together."""
    return f"{name}/{date}_{time}" if name else f"{date}/{time}"


def register_resolvers() -> None:
    """Resolvers for derived values: `${fraction_of:0.5,${trainer.max_steps}}` -> 100000 (where the step decay
    comes), the run's label and dir, tags, and absolute paths."""
    resolvers = {
        "fraction_of": lambda frac, total: int(float(frac) * int(total)),
        "run_label": lambda *, _root_: run_label(_root_),
        "run_dir_of": run_dir_of,
        "tag_dict": lambda tags: {str(tag): "" for tag in tags or []},
        "sqlite_uri": lambda path: f"sqlite:///{to_absolute_path(path)}",
        "abspath": to_absolute_path,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


# Overrides that do not tell runs apart: where things are read and written, and how a run continues.
_UNNAMING_KEYS = ("hydra", "data.path", "resume", "ckpt_path", "name", "tags", "threads", "print_config")


def run_label(cfg: DictConfig) -> str:
    """What TensorBoard, MLflow and W&B call this run: `name=` if given, else the overrides that made it
    (`experiment=seed_11897`, `hidden=300,emb_dim=10`), else the model's name. A sweep's job is called by
    the overrides that tell it apart from the other jobs (after the name, if given)."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    overrides = [o.lstrip("+~") for o in overrides if not o.lstrip("+~").split("=")[0].startswith(_UNNAMING_KEYS)]
    swept = _swept_keys()
    if swept is not None:
        job = ",".join(o for o in overrides if o.split("=")[0] in swept)
        label = f"{cfg.name}:{job}" if cfg.get("name") else job
    else:
        label = str(cfg.name) if cfg.get("name") else ",".join(overrides)
    return (label or str(cfg.model.name)).replace("/", "_").replace("\\", "_")[:120]


def _swept_keys() -> set[str] | None:
    """In a multirun job, the keys that vary between the sweep's jobs; else None."""
    from makemore.sweep import SWEPT_KEYS_FILE

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    path = Path(HydraConfig.get().sweep.dir) / SWEPT_KEYS_FILE
    return set(json.loads(path.read_text())) if path.is_file() else None
