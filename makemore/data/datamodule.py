"""LightningDataModule: the text file -> vocabulary -> seeded split -> context sets -> loaders."""

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from makemore.data.contexts import SPLIT_NAMES, make_splits
from makemore.data.download import download
from makemore.data.text import read_text_file
from makemore.data.views import Examples, build_examples
from makemore.data.vocab import Vocabulary
from makemore.errors import DataError, MakemoreError

Batch = tuple[torch.Tensor, torch.Tensor]


class RandomMinibatches:
    """The seed's `ix = torch.randint(0, N, (batch_size,))`, drawn for `steps_per_call` steps at once.

    Each item is (X (K, B, T), Y (K, B) or (K, B, T)): K minibatches gathered with one indexing op, so per-step
    cost is the model's arithmetic, not per-example collation. Its length is the whole run's
    Lightning calls; a resumed run starts at `start_step`.

    Resumable through Lightning's stateful-loader protocol (state_dict / load_state_dict): the
    generator's state before each recent draw is kept by the step that draw starts at, so a checkpoint
    written at step s holds the state for s whether or not Lightning has already fetched s's batch.
    """

    def __init__(
        self, examples: Examples, batch_size: int, max_steps: int, steps_per_call: int, seed: int, start_step: int = 0
    ):
        self.examples = examples
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.steps_per_call = steps_per_call
        self.start_step = start_step
        self.generator = torch.Generator().manual_seed(seed)
        self._state_at: dict[int, torch.Tensor] = {}  # first step of a recent draw -> generator state before it

    def __len__(self) -> int:
        return math.ceil(self.max_steps / self.steps_per_call)

    def __iter__(self) -> Iterator[Batch]:
        if self.start_step in self._state_at:
            self.generator.set_state(self._state_at[self.start_step])
        elif 0 < self.start_step < self.max_steps:
            raise MakemoreError(
                f"the checkpoint holds no minibatch sampler state for step {self.start_step}; "
                "resume with the steps_per_call and batch_size it was trained with"
            )
        self._state_at = {self.start_step: self.generator.get_state()}
        for start in range(self.start_step, self.max_steps, self.steps_per_call):
            k = min(self.steps_per_call, self.max_steps - start)
            ix = torch.randint(len(self.examples), (k, self.batch_size), generator=self.generator)
            self._state_at = {s: g for s, g in self._state_at.items() if s >= start - 2 * self.steps_per_call}
            self._state_at[start + k] = self.generator.get_state()  # before the draw that starts there
            yield self.examples.minibatches(ix)

    def state_dict(self) -> dict[str, Any]:
        return {"generator_state_at_step": dict(self._state_at)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state_at = dict(state["generator_state_at_step"])


class RepeatedBatch:
    """One fixed batch (every example of a few items) for every step: the seed's overfit sanity check."""

    def __init__(self, examples: Examples, max_steps: int, steps_per_call: int, start_step: int = 0):
        self.batch = examples.tensors()
        self.max_steps = max_steps
        self.steps_per_call = steps_per_call
        self.start_step = start_step

    def __len__(self) -> int:
        return math.ceil(self.max_steps / self.steps_per_call)

    def __iter__(self) -> Iterator[Batch]:
        x, y = self.batch
        for start in range(self.start_step, self.max_steps, self.steps_per_call):
            k = min(self.steps_per_call, self.max_steps - start)
            yield x.expand(k, *x.shape), y.expand(k, *y.shape)


class Chunks(Dataset):
    """A whole split, or process `rank`'s contiguous share of it under data parallelism, in chunks of
    `chunk_size` examples: exact full-split losses, each target scored by exactly one process."""

    def __init__(self, examples: Examples, chunk_size: int, rank: int = 0, world_size: int = 1):
        self.examples = examples
        self.chunk_size = chunk_size
        self.start = len(examples) * rank // world_size
        self.stop = len(examples) * (rank + 1) // world_size

    def __len__(self) -> int:
        return math.ceil((self.stop - self.start) / self.chunk_size)

    def __getitem__(self, i: int) -> Batch:
        start = self.start + i * self.chunk_size
        return self.examples[torch.arange(start, min(start + self.chunk_size, self.stop))]


class CharDataModule(L.LightningDataModule):
    """One-item-per-line text file as examples of the model's `view`: (context, next character) examples
    for context models, windows of items with a target at every position for sequence models.

    `path=None` means the default dataset: `default.file`, downloaded from `default.url` when missing.
    `overfit_items=N` trains, validates and tests on the first N items only, as one fixed batch.
    """

    def __init__(
        self,
        path: str | None,
        default: dict,
        block_size: int,
        batch_size: int,
        split: Sequence[float] = (0.8, 0.1, 0.1),
        split_seed: int = 42,
        eval_batch_size: int = 65536,
        steps_per_call: int = 1,
        sampler_seed: int = 0,
        overfit_items: int | None = None,
        view: str = "context",
    ):
        super().__init__()
        self.path = Path(path if path is not None else default["file"])
        self.default = None if path is not None else default
        self.block_size = block_size
        self.batch_size = batch_size
        self.split = list(split)
        self.split_seed = split_seed
        self.eval_batch_size = eval_batch_size
        self.steps_per_call = steps_per_call
        self.sampler_seed = sampler_seed
        self.overfit_items = overfit_items
        self.view = view
        self.vocab: Vocabulary | None = None
        self.items: dict[str, list[str]] = {}
        self.examples: dict[str, Examples] = {}
        self.sha256: str | None = None
        self._prepared: tuple[int, int] | None = None

    def prepare_data(self) -> None:
        if self.default is not None:
            download(self.default["url"], self.path, self.default["sha256"])
        self._prepared = _stat_fingerprint(self.path)

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        before = _stat_fingerprint(self.path)
        items, self.sha256 = read_text_file(self.path)
        if before != _stat_fingerprint(self.path) or (self._prepared and before != self._prepared):
            raise DataError(
                f"{self.path} changed while it was being prepared and read (is something still writing or "
                "downloading it?); rerun once the file is complete"
            )
        self.vocab = Vocabulary.from_items(items)
        self.items = make_splits(items, self.split, self.split_seed, self.overfit_items)
        self.examples = {
            name: build_examples(self.view, self.items[name], self.vocab, self.block_size) for name in SPLIT_NAMES
        }

    def record(self) -> dict[str, Any]:
        """What a checkpoint stores to find this data and its split again."""
        return {
            "path": str(self.path.resolve()),
            "sha256": self.sha256,  # of the bytes trained on, not of the file as it is now
            "split": self.split,
            "split_seed": self.split_seed,
            "overfit_items": self.overfit_items,
        }

    @property
    def split_sizes(self) -> dict[str, int]:
        """Targets per split: the same for every view and model (182625 / 22655 / 22866 on names.txt)."""
        return {name: examples.num_targets for name, examples in self.examples.items()}

    @property
    def eval_chunk(self) -> int:
        """Examples per eval chunk: a window holds block_size targets, so fewer of them keep memory bounded."""
        return max(1, self.eval_batch_size // (self.block_size if self.view == "sequence" else 1))

    def train_dataloader(self) -> RandomMinibatches | RepeatedBatch:
        """Batches already stacked: no DataLoader, whose collation and worker logic would only add cost.
        A resumed run (global_step restored from the checkpoint) draws from its step on."""
        max_steps, start = self.trainer.max_steps, self.trainer.global_step
        if self.overfit_items:
            return RepeatedBatch(self.examples["train"], max_steps, self.steps_per_call, start)
        seed = self.sampler_seed + self.trainer.global_rank  # each data-parallel process its own minibatches
        return RandomMinibatches(self.examples["train"], self.batch_size, max_steps, self.steps_per_call, seed, start)

    def val_dataloader(self) -> DataLoader:
        trainer = self.trainer
        chunks = Chunks(self.examples["val"], self.eval_chunk, trainer.global_rank, trainer.world_size)
        return DataLoader(chunks, batch_size=None)


def _stat_fingerprint(path: Path) -> tuple[int, int] | None:
    """(size, modification time): cheap to take, and it changes whenever the file is rewritten."""
    try:
        stat = path.stat()
    except OSError:
        return None  # read_text_file says what is wrong with the path
    return stat.st_size, stat.st_mtime_ns
