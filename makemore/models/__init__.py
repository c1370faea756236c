"""The model registry: nn.Modules taking (vocab_size, block_size, **knobs), with a `view`: "context" (B, block_size)
-> (B, V), or "sequence" (B, T) -> (B, T, V), causally; char_embedding() is the (V, m) table or None."""

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

MODELS: dict[str, type[nn.Module]] = dict(bigram=Bigram, mlp=MLP, mlp_batchnorm=MLPBatchNorm, wavenet=WaveNet)
MODELS.update(rnn=RNN, gru=GRU, lstm=LSTM, bow=BoW, transformer=Transformer)


def build_model(config: Mapping[str, Any], vocab_size: int) -> nn.Module:
    """The model `config` names, built with the rest of config as its knobs (makemore.schema checks them first)."""
    try:
        return MODELS[config["name"]](vocab_size=vocab_size, **{k: v for k, v in config.items() if k != "name"})
    except ValueError as e:  # what a knob's type cannot say: transformer's emb_dim % n_head, wavenet's block_size
        raise ConfigError(f"model={config['name']}: {e}") from None


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The 2-D weights Muon is for: all but the embedding tables and the output layer (the last matrix registered)."""
    tables = {id(model.char_embedding())}  # MLP's C is a bare Parameter, not an nn.Embedding (the bigram's: None)
    tables |= {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    matrices = [p for p in model.parameters() if p.dim() == 2]
    return [p for p in matrices[:-1] if id(p) not in tables]
