"""LightningDataModule: the text file -> vocabulary -> seeded split -> context sets -> loaders."""

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from makemore.data.contexts import SPLIT_NAMES, make_splits
from makemore.data.download import download
from makemore.data.sequences import BUILD_EXAMPLES, Examples
from makemore.data.text import read_text_file
from makemore.data.vocab import Vocabulary
from makemore.errors import DataError, MakemoreError

Batch = tuple[torch.Tensor, torch.Tensor]


class TrainMinibatches:
    """The notebook's `torch.randint(0, N, (batch_size,))` minibatches (`fixed`: the first ones, in order), k per call
    as the LoopPlan says; resumable: the generator state before each recent draw is kept by its run minibatch."""

    def __init__(self, examples: Examples, batch_size: int, seed: int, fixed: bool = False, plan: Any = None):
        self.examples, self.batch_size, self.fixed, self.plan = examples, batch_size, fixed, plan
        self.generator = torch.Generator().manual_seed(seed)
        self._state_at: dict[int, torch.Tensor] = {}  # run minibatch a draw starts at -> generator state before it

    def __len__(self) -> int:
        return math.ceil(len(self.examples) / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        total, in_epoch, epoch = self.plan.position() if self.plan else (0, 0, len(self))
        if self._state_at and not self.fixed:  # continue the random stream at the run's minibatch `total`
            start = max((s for s in self._state_at if s <= total), default=None)
            if start is None:
                raise MakemoreError(
                    f"the checkpoint holds no minibatch sampler state at or before minibatch {total}; "
                    "resume with the batch_size it was trained with"
                )
            self.generator.set_state(self._state_at[start])
            if total > start:  # drawn after that state and trained already
                torch.randint(len(self.examples), (total - start, self.batch_size), generator=self.generator)
            self._state_at = {total: self.generator.get_state()}
        while in_epoch < epoch:
            k = self.plan.next_call(total, in_epoch) if self.plan else 1
            self._state_at = dict(list(self._state_at.items())[-2:]) | {total: self.generator.get_state()}
            if self.fixed:
                ix = (in_epoch * self.batch_size + torch.arange(k * self.batch_size).view(k, -1)) % len(self.examples)
            else:
                ix = torch.randint(len(self.examples), (k, self.batch_size), generator=self.generator)
            x, y = self.examples.minibatches(ix)
            yield (x, y) if self.plan and self.plan.multi_step else (x[0], y[0])
            total, in_epoch = total + k, in_epoch + k

    def state_dict(self) -> dict[str, Any]:
        return {"generator_state_at_step": dict(self._state_at)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state_at = dict(state["generator_state_at_step"])


class SplitShard(Dataset):
    """Process `rank`'s contiguous share of a split's first `fraction`, in chunks: each target scored by one process."""

    def __init__(self, examples: Examples, chunk_size: int, rank: int = 0, world_size: int = 1, fraction: float = 1.0):
        n = max(1, math.ceil(fraction * len(examples)))
        self.examples, self.chunk_size = examples, chunk_size
        self.start, self.stop = n * rank // world_size, n * (rank + 1) // world_size

    def __len__(self) -> int:
        return math.ceil((self.stop - self.start) / self.chunk_size)

    def __getitem__(self, i: int) -> Batch:
        start = self.start + i * self.chunk_size
        return self.examples[torch.arange(start, min(start + self.chunk_size, self.stop))]


class CharDataModule(L.LightningDataModule):
    """A one-item-per-line text file (`path=None`: `default`, downloaded) as examples of the model's `view`."""

    def __init__(self, path: str | None, default: dict, block_size: int, batch_size: int,
                 split: Sequence[float] = (0.8, 0.1, 0.1), split_seed: int = 42, eval_batch_size: int = 65536,
                 sampler_seed: int = 0, overfit_items: int | None = None, view: str = "context"):  # fmt: skip
        super().__init__()
        self.path = Path(path if path is not None else default["file"])
        self.default = None if path is not None else default
        self.block_size, self.batch_size, self.view = block_size, batch_size, view
        self.eval_batch_size, self.split, self.split_seed = eval_batch_size, list(split), split_seed
        self.sampler_seed, self.overfit_items = sampler_seed, overfit_items
        self.plan = None  # the run's LoopPlan, set by build_trainer
        self.val_fraction = 1.0  # trainer.limit_val_batches as a fraction: the first part of the split
        self.vocab: Vocabulary | None = None
        self.examples: dict[str, Examples] = {}
        self.record: dict[str, Any] = {}  # what a checkpoint stores to find this data and its split again (setup)
        self._prepared: os.stat_result | None = None

    def prepare_data(self) -> None:
        if self.default is not None:
            download(self.default["url"], self.path, self.default["sha256"])
        self._prepared = self.path.stat() if self.path.is_file() else None

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        then = self._prepared or (self.path.stat() if self.path.is_file() else None)
        items, sha256 = read_text_file(self.path)
        now = self.path.stat()  # the same size and time as before: not rewritten since prepare_data, nor while read
        if then is None or (now.st_size, now.st_mtime_ns) != (then.st_size, then.st_mtime_ns):
            raise DataError(
                f"{self.path} changed while it was being prepared and read (is something still writing or "
                "downloading it?); rerun once the file is complete"
            )
        self.vocab = Vocabulary.from_items(items)
        splits = make_splits(items, self.split, self.split_seed, self.overfit_items)
        self.examples = {n: BUILD_EXAMPLES[self.view](splits[n], self.vocab, self.block_size) for n in SPLIT_NAMES}
        self.split_sizes = {n: ex.num_targets for n, ex in self.examples.items()}  # the same for every view and model
        self.record = {"path": str(self.path.resolve()), "sha256": sha256,  # of the bytes trained on: not the file now
                       "split": self.split, "split_seed": self.split_seed,
                       "overfit_items": self.overfit_items}  # fmt: skip

    def train_dataloader(self) -> TrainMinibatches:
        """Minibatches already stacked (a DataLoader would only add cost); overfit_items: those items, one batch."""
        trainer, train = self.trainer, self.examples["train"]
        fixed = bool(self.overfit_items) or bool(trainer is not None and trainer.overfit_batches)
        batch_size = len(train) if self.overfit_items else self.batch_size
        seed = self.sampler_seed + (trainer.global_rank if trainer is not None else 0)  # each process its own
        return TrainMinibatches(train, batch_size, seed, fixed, self.plan)

    def val_dataloader(self) -> DataLoader:
        """Chunks of eval_batch_size targets: a window holds block_size of them, so fewer windows bound memory."""
        t, chunk = self.trainer, max(1, self.eval_batch_size // (self.block_size if self.view == "sequence" else 1))
        shard = SplitShard(self.examples["val"], chunk, t.global_rank, t.world_size, self.val_fraction)
        return DataLoader(shard, batch_size=None)
