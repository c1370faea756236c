"""Find and load a self-contained makemore checkpoint (weights + vocabulary + model and data config)."""

import io
import pickle
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from makemore.data.contexts import SPLIT_IDENTITY
from makemore.errors import CheckpointWriteError, ConfigError, MakemoreError
from makemore.evaluation import check_members
from makemore.io import atomic_write_bytes
from makemore.schema import check_stored_config
from makemore.training.module import LitLanguageModel


def resolve_checkpoint(path: str | Path) -> Path:
    """A .ckpt file as given, or a run directory's checkpoints/best.ckpt (last.ckpt when nothing was validated)."""
    path = Path(path)
    if path.is_dir():
        best = path / "checkpoints" / "best.ckpt"
        path = best if best.is_file() or not (path / "checkpoints" / "last.ckpt").is_file() else best.with_stem("last")
    if not path.is_file():
        raise MakemoreError(f"checkpoint not found: {path} (pass ckpt=<run dir> or ckpt=<run dir>/checkpoints/"
                            "best.ckpt)")  # fmt: skip
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict in `path`, unpickled without executing code, checked to be makemore's own."""
    path = Path(path)
    try:  # weights_only: tensors, plain containers, strings, numbers, Counter; any other global (code) is refused
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as e:
        pickled = isinstance(e, pickle.UnpicklingError)
        unsafe = [line.strip() for line in str(e).splitlines() if "Unsupported global" in line]
        if pickled and unsafe:
            raise MakemoreError(
                f"refused to load {path}: it holds Python objects beyond tensors and plain data, which a makemore "
                f"checkpoint never does ({unsafe[0][:200]})"
            ) from None
        why = "it is not a PyTorch file" if pickled else f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        raise MakemoreError(
            f"cannot read {path} as a checkpoint (truncated or corrupted?): {why}; "
            "use another .ckpt, e.g. the run's best.ckpt or last.ckpt"
        ) from None
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    required = {"model", "vocab", "optimizer"}
    if not isinstance(hparams, dict) or not required <= hparams.keys() or "state_dict" not in ckpt:
        raise MakemoreError(
            f"{path} is a PyTorch file but not a makemore checkpoint (no model config, vocabulary and weights); "
            "pass a .ckpt written by scripts/train.py"
        )
    try:
        check_stored_config(hparams)
    except ConfigError as e:
        raise MakemoreError(
            f"refused to load {path}: its stored config is not plain makemore settings ({e}); "
            "a checkpoint written by scripts/train.py never holds this"
        ) from None
    return ckpt


def load_checkpoint(path: str | Path) -> tuple[LitLanguageModel, dict[str, Any]]:
    """The LitLanguageModel stored in `path` (in eval mode, on CPU) and the raw checkpoint dict."""
    ckpt = read_checkpoint(path := resolve_checkpoint(path))
    try:
        module = LitLanguageModel(**ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        message = f"{path}: its weights do not fit its model config ({type(e).__name__}: {e})"
        raise MakemoreError(message[:500]) from None
    return module.eval(), ckpt


def load_members(ckpt: str | Sequence[str]) -> tuple[list[Path], list[LitLanguageModel], list[dict[str, Any]]]:
    """Paths, modules and raw checkpoints of `ckpt`, or of each of a list (an ensemble: same data and vocabulary)."""
    paths = [resolve_checkpoint(p) for p in ([ckpt] if isinstance(ckpt, str) else list(ckpt))]
    loaded = [load_checkpoint(p) for p in paths]
    modules, ckpts = [m for m, _ in loaded], [c for _, c in loaded]
    check_members(paths, modules)
    return paths, modules, ckpts


def check_resumable(ckpt: dict[str, Any], path: Path, module: LitLanguageModel) -> None:
    """Refuse a checkpoint of another model, vocabulary, optimizer or data: it would fail, or train neither run."""
    saved, current = ckpt["hyper_parameters"], module.hparams
    keys = ("model", "vocab", "optimizer")  # the schedule: configure_optimizers, with the run's length
    differences = _differences("", {k: saved.get(k) for k in keys}, {k: current.get(k) for k in keys})
    saved_data, data = saved.get("data") or {}, current.get("data") or {}  # plain values (a DataRecord): compared whole
    differences += [d for k in SPLIT_IDENTITY for d in _differences(f"data.{k}", saved_data.get(k), data.get(k))]
    if differences:
        raise MakemoreError(
            f"{path} was trained with a different config, so this run can't continue it: "
            f"{'; '.join(differences[:4])}{' ...' if len(differences) > 4 else ''}; pass the overrides it was "
            "trained with (resume=<run dir> does that)"
        )


def _differences(prefix: str, saved: Any, current: Any) -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(saved.keys() | current.keys())
        return [d for k in keys for d in _differences(f"{prefix}{k}.", saved.get(k), current.get(k))]
    if saved != current:
        return [f"{prefix.rstrip('.')}: {_short(saved)} in the checkpoint, {_short(current)} now"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class CheckpointWriter(TorchCheckpointIO):
    """Checkpoints written whole or not at all (temp file, synced, renamed), so a failed write keeps the previous."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            atomic_write_bytes(path, buffer.getvalue())
        except OSError as e:
            free = shutil.disk_usage(Path(path).parent).free if Path(path).parent.exists() else 0
            raise CheckpointWriteError(
                f"could not write checkpoint {path} ({buffer.tell() / 1e6:.1f} MB, {free / 1e6:.1f} MB free): "
                f"{e.strerror or e}; the previous {Path(path).name}, if any, is intact: free space (or make the run "
                f"dir writable), then continue with python scripts/train.py resume={Path(path).parent.parent}"
            ) from None
