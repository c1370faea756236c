"""The sequence view of a split and BUILD_EXAMPLES; both views score the same targets, so their losses compare."""

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from makemore.data.contexts import ContextSet, build_contexts, encode_items
from makemore.data.vocab import BOUNDARY_ID, Vocabulary

IGNORE_INDEX = -100  # torch's cross_entropy default: targets past the end of an item count for nothing


class SequenceSet:
    """Windows of the stream `0 c1 .. cn 0 d1 ...`, never across items; targets past lengths[i] are IGNORE_INDEX."""

    def __init__(self, stream: Tensor, starts: Tensor, lengths: Tensor, block_size: int):
        self.stream, self.block_size = stream, block_size  # (L + T,) ids, zero-padded at the end
        self.starts, self.lengths = starts, lengths  # (W,) int64 each, lengths 1..T
        self._offsets = torch.arange(block_size + 1)  # (T+1,)
        self.num_targets = int(lengths.sum())

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, ix: Tensor | slice) -> tuple[Tensor, Tensor]:
        """Windows at `ix` (indices of any shape S, or a slice: [:] is all): inputs and targets (*S, T), int64."""
        w = self.stream[self.starts[ix].unsqueeze(-1) + self._offsets].long()  # (*S, T+1)
        past_end = self._offsets[1:] > self.lengths[ix].unsqueeze(-1)  # (*S, T)
        return w[..., :-1], w[..., 1:].masked_fill(past_end, IGNORE_INDEX)

    def minibatches(self, ix: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """K minibatches of windows, ix (K, B), each cut to its longest window (the cut positions hold no target)."""
        x, y = self[ix]  # (K, B, T)
        ends = self.lengths[ix].amax(dim=1).tolist()  # (K,) each minibatch's longest window
        return [a[:, :n] for a, n in zip(x, ends, strict=True)], [b[:, :n] for b, n in zip(y, ends, strict=True)]


def build_sequences(items: Sequence[str], vocab: Vocabulary, block_size: int) -> SequenceSet:
    ids, lengths = encode_items(items, vocab)  # each item's ids and its boundary; lengths = n + 1 targets
    stream = np.concatenate([[BOUNDARY_ID], ids, np.zeros(block_size, dtype=ids.dtype)]).astype(ids.dtype)
    item_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # position of each item's leading boundary
    per_item = -(-lengths // block_size)  # windows per item, ceil
    first = np.repeat(np.cumsum(per_item) - per_item, per_item)
    k = np.arange(per_item.sum(), dtype=np.int64) - first  # window number within its item
    starts = np.repeat(item_starts, per_item) + k * block_size
    window_lengths = np.minimum(block_size, np.repeat(lengths, per_item) - k * block_size)
    return SequenceSet(torch.from_numpy(stream), torch.from_numpy(starts), torch.from_numpy(window_lengths), block_size)


Examples = ContextSet | SequenceSet
BUILD_EXAMPLES = {"context": build_contexts, "sequence": build_sequences}  # by model view: (items, vocab, T)
