"""Find and load a self-contained makemore checkpoint (weights + vocabulary + model and data config)."""

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from makemore.contexts import make_splits
from makemore.errors import DataError, MakemoreError
from makemore.lit_model import LanguageModel
from makemore.text import file_sha256, read_items


def resolve_checkpoint(path: str | Path) -> Path:
    """A .ckpt file as given, or a run directory's checkpoints/best.ckpt."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "best.ckpt"
    if not path.is_file():
        raise MakemoreError(
            f"checkpoint not found: {path} (pass ckpt=<run dir> or ckpt=<run dir>/checkpoints/best.ckpt)"
        )
    return path


def load_checkpoint(path: str | Path) -> tuple[LanguageModel, dict[str, Any]]:
    """The LanguageModel stored in `path` (in eval mode, on CPU) and the raw checkpoint dict.

    weights_only=True: a checkpoint is data, never code to execute.
    """
    path = resolve_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        module = LanguageModel(**ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, KeyError, TypeError, EOFError) as e:
        raise MakemoreError(f"not a readable makemore checkpoint: {path} ({type(e).__name__}: {e})"[:500]) from None
    return module.eval(), ckpt


def recorded_splits(module: LanguageModel, data_path: str | Path | None = None) -> tuple[Path, dict[str, list[str]]]:
    """The train/val/test items of the data recorded in the checkpoint (refused if that file has
    changed since), or of `data_path` cut with the recorded fractions and seed."""
    record = module.hparams.data
    if record is None:
        raise DataError("this checkpoint records no data file; pass data.path=/path/to/file.txt")
    path = Path(data_path if data_path is not None else record["path"])
    items = read_items(path)
    if data_path is None and file_sha256(path) != record["sha256"]:
        raise DataError(
            f"{path} changed since this model was trained (sha256 differs); "
            "pass data.path= explicitly to use its current contents"
        )
    return path, make_splits(items, record["split"], record["split_seed"], record.get("overfit_items"))
