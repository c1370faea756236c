"""Model families: plain nn.Modules mapping idx (B, block_size) -> logits (B, vocab_size).

Each family is a module here plus a conf/model/<name>.yaml whose _target_ points at it.
"""

from makemore.models.mlp import MLP

__all__ = ["MLP"]
