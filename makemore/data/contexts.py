"""Items -> seeded train/val/test split -> (context, next id) examples, built vectorized and stored compactly."""

import random
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from makemore.data.text import read_text_file
from makemore.data.vocab import BOUNDARY_ID, Vocabulary
from makemore.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
SPLIT_IDENTITY = ("sha256", "split", "split_seed", "overfit_items")  # a data record's keys that fix its splits


def make_splits(
    items: Sequence[str], fractions: Sequence[float], seed: int, overfit_items: int | None = None
) -> dict[str, list[str]]:
    """The notebook's split: `items` shuffled by `random.Random(seed)`, cut at the cumulative `fractions`."""
    if overfit_items:
        return {name: list(items[:overfit_items]) for name in SPLIT_NAMES}
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    cuts = [0, *(int(f * n) for f in accumulate(fractions[:-1])), n]
    splits = {name: shuffled[a:b] for name, a, b in zip(SPLIT_NAMES, cuts[:-1], cuts[1:], strict=True)}
    if empty := [name for name, part in splits.items() if not part]:
        raise DataError(
            f"{n} items are too few to split {list(fractions)} into train/val/test: the {'/'.join(empty)} "
            "split would be empty; add lines to the file or change data.split"
        )
    return splits


def recorded_splits(record: dict | None, data_path: str | Path | None = None) -> tuple[Path, dict[str, list[str]]]:
    """The splits of the data a checkpoint records (refused if it changed), or of `data_path` split as recorded."""
    if record is None:
        raise DataError("this checkpoint records no data file; pass data.path=/path/to/file.txt")
    path = Path(data_path if data_path is not None else record["path"])
    items, sha256 = read_text_file(path)
    if data_path is None and sha256 != record["sha256"]:
        raise DataError(
            f"{path} changed since this model was trained (sha256 differs); "
            "pass data.path= explicitly to use its current contents"
        )
    return path, make_splits(items, record["split"], record["split_seed"], record.get("overfit_items"))


def encode_items(items: Sequence[str], vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """The ids of all items, each followed by the boundary, in the smallest dtype; and each item's length + 1."""
    lengths = np.array(list(map(len, items)), dtype=np.int64) + 1
    # '\n' never occurs inside an item (they come from splitlines), so it marks the boundaries.
    codes = np.frombuffer(("\n".join(items) + "\n").encode("utf-32-le"), dtype=np.uint32)
    chars = [ord(c) for c in vocab.chars]
    lookup = np.full(max([int(codes.max()), *chars]) + 1, -1, dtype=np.int32)  # code point -> id, -1: unknown
    lookup[chars] = np.arange(1, vocab.size)
    lookup[ord("\n")] = BOUNDARY_ID
    ids = lookup[codes]
    if (ids < 0).any():
        raise DataError(f"characters not in the vocabulary: {vocab.unknown_chars(items)[:20]}")
    return ids.astype(np.uint8 if vocab.size <= 256 else np.int16 if vocab.size <= 32768 else np.int32), lengths


class ContextSet:
    """The notebook's (context, next id) examples without storing X: (stream[p-T:p], stream[p]) at target p."""

    def __init__(self, stream: Tensor, positions: Tensor, block_size: int):
        self.stream, self.positions, self.block_size = stream, positions, block_size  # (L,) ids, (N,) int64
        self.num_targets = len(positions)  # one per example
        self._window = torch.arange(-block_size, 0)  # (T,) offsets of a context before its target

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, ix: Tensor | slice) -> tuple[Tensor, Tensor]:
        """Examples at `ix` (indices of any shape S, or a slice: [:] is all): contexts (*S, T), targets (*S), int64."""
        p = self.positions[ix]
        return self.stream[p.unsqueeze(-1) + self._window].long(), self.stream[p].long()

    minibatches = __getitem__  # ix (K, B): K minibatches at once, contexts (K, B, T) and targets (K, B)


def build_contexts(items: Sequence[str], vocab: Vocabulary, block_size: int) -> ContextSet:
    ids, lengths = encode_items(items, vocab)
    # Target k of item i sits after the i + 1 blocks of boundary padding that precede items 0..i.
    positions = np.repeat(np.arange(1, len(items) + 1, dtype=np.int64) * block_size, lengths)
    positions += np.arange(len(ids), dtype=np.int64)
    stream = np.full(len(ids) + len(items) * block_size, BOUNDARY_ID, dtype=ids.dtype)
    stream[positions] = ids
    return ContextSet(torch.from_numpy(stream), torch.from_numpy(positions), block_size)
