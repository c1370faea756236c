"""Load a self-contained makemore checkpoint (weights + vocabulary + model config) without Hydra or data."""

from pathlib import Path
from typing import Any

import torch

from makemore.lit_model import LanguageModel


def load_checkpoint(path: str | Path) -> tuple[LanguageModel, dict[str, Any]]:
    """The LanguageModel stored in `path` (in eval mode, on CPU) and the raw checkpoint dict.

    weights_only=True: a checkpoint is data, never code to execute.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    module = LanguageModel(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    return module.eval(), ckpt
