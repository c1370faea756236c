"""The model family and its registry: plain nn.Modules, rebuilt from a name and plain values only.

Every model takes (vocab_size, block_size, **knobs) and has a class attribute `view`:
- "context": sees the last block_size ids and predicts the next, idx (B, block_size) -> logits (B, V);
- "sequence": predicts at every position, causally, idx (B, T <= block_size) -> logits (B, T, V).
`char_embedding()` returns the (V, m) character embedding table, or None. A new family is a module here,
an entry in MODELS and a conf/model/<name>.yaml.
"""

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from makemore.errors import ConfigError
from makemore.models.bigram import Bigram
from makemore.models.bow import BoW
from makemore.models.mlp import MLP
from makemore.models.mlp_batchnorm import MLPBatchNorm
from makemore.models.rnn import GRU, LSTM, RNN
from makemore.models.transformer import Transformer
from makemore.models.wavenet import WaveNet
from makemore.plain import check_keys, check_plain

MODELS: dict[str, type[nn.Module]] = {
    "bigram": Bigram,
    "mlp": MLP,
    "mlp_batchnorm": MLPBatchNorm,
    "wavenet": WaveNet,
    "rnn": RNN,
    "gru": GRU,
    "lstm": LSTM,
    "bow": BoW,
    "transformer": Transformer,
}


SIZE_KNOBS = {"block_size", "emb_dim", "hidden", "n_layer", "n_head"}  # counts and widths: positive integers


def model_class(name: Any) -> type[nn.Module]:
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(f"model.name={name!r} is not a makemore model; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def model_knobs(cls: type[nn.Module]) -> list[str]:
    """The constructor's keyword arguments besides vocab_size: what conf/model/<name>.yaml may set."""
    params = inspect.signature(cls.__init__).parameters
    return [name for name in params if name not in ("self", "vocab_size")]


def check_model_config(config: Mapping[str, Any], where: str = "model") -> type[nn.Module]:
    """The class `config` names, after refusing unknown names, unknown knobs and non-plain values."""
    check_plain(config, where)
    cls = model_class(config.get("name"))
    check_keys({k: v for k, v in config.items() if k != "name"}, model_knobs(cls), where, f"the {config['name']} model")
    for key in SIZE_KNOBS & config.keys():
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.{key} must be a positive integer, got {value!r}")
    dropout = config.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"{where}.dropout must be a number in [0, 1), got {dropout!r}")
    return cls


def build_model(config: Mapping[str, Any], vocab_size: int) -> nn.Module:
    """The model `config` names (config['name'] in MODELS), built with the rest of config as its knobs."""
    cls = check_model_config(config)
    try:
        return cls(vocab_size=vocab_size, **{k: v for k, v in config.items() if k != "name"})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"model={config['name']}: {e}") from None


__all__ = [
    "GRU",
    "LSTM",
    "MLP",
    "MODELS",
    "RNN",
    "Bigram",
    "BoW",
    "MLPBatchNorm",
    "Transformer",
    "WaveNet",
    "build_model",
    "check_model_config",
    "model_class",
    "model_knobs",
]
