"""The sequence view of a split: each item as windows of up to block_size targets, for sequence models.

Same items, same targets as the context view (every character and the end of every item, each once),
so losses of the two views are comparable: only how much of the item a prediction may look back on
differs. A window never holds another item's characters before a scored target.
"""

import numpy as np
import torch

from makemore.data.contexts import encode_items
from makemore.data.vocab import BOUNDARY_ID, Vocabulary

IGNORE_INDEX = -100  # torch's cross_entropy default: targets past the end of an item count for nothing


class SequenceSet:
    """Windows over one token stream `0 c1 .. cn 0 d1 .. dm 0 ...` (one boundary between items).

    Window i starts at stream position starts[i] and scores lengths[i] <= T targets: inputs
    stream[s : s+T], targets stream[s+1 : s+T+1], the targets past lengths[i] set to IGNORE_INDEX.
    An item of n characters has n + 1 targets, cut into ceil((n + 1) / T) windows; a window after the
    first starts where the previous one ended, so its first targets see less of the item than T.
    """

    def __init__(self, stream: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor, block_size: int):
        self.stream = stream  # (L + T,) smallest integer dtype that holds the vocabulary, zero-padded at the end
        self.starts = starts  # (W,) int64
        self.lengths = lengths  # (W,) int64, 1..T
        self.block_size = block_size
        self._offsets = torch.arange(block_size + 1)  # (T+1,)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def num_targets(self) -> int:
        return int(self.lengths.sum())

    def __getitem__(self, ix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows at indices `ix` (any shape S): inputs (*S, T) and targets (*S, T), as int64."""
        w = self.stream[self.starts[ix].unsqueeze(-1) + self._offsets].long()  # (*S, T+1)
        x, y = w[..., :-1], w[..., 1:]
        past_end = self._offsets[1:] > self.lengths[ix].unsqueeze(-1)  # (*S, T)
        return x, y.masked_fill(past_end, IGNORE_INDEX)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self[torch.arange(len(self))]

    def minibatches(self, ix: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """K minibatches of windows, ix (K, B): each cut to its longest window, since positions past every
        window's end hold no target (names average 7 targets in windows of 16). A causal model's scored
        predictions do not depend on the positions cut."""
        x, y = self[ix]  # (K, B, T)
        longest = self.lengths[ix].amax(dim=1).tolist()
        cut = list(zip(x, y, longest, strict=True))
        return [xk[:, :n] for xk, _, n in cut], [yk[:, :n] for _, yk, n in cut]


def build_sequences(items: list[str], vocab: Vocabulary, block_size: int) -> SequenceSet:
    ids, lengths = encode_items(items, vocab)  # each item's ids and its boundary; lengths = n + 1 targets
    stream = np.concatenate([[BOUNDARY_ID], ids, np.zeros(block_size, dtype=ids.dtype)]).astype(ids.dtype)
    item_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # position of each item's leading boundary
    per_item = -(-lengths // block_size)  # windows per item, ceil
    first = np.repeat(np.cumsum(per_item) - per_item, per_item)
    k = np.arange(per_item.sum(), dtype=np.int64) - first  # window number within its item
    starts = np.repeat(item_starts, per_item) + k * block_size
    window_lengths = np.minimum(block_size, np.repeat(lengths, per_item) - k * block_size)
    return SequenceSet(torch.from_numpy(stream), torch.from_numpy(starts), torch.from_numpy(window_lengths), block_size)
