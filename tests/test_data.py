from types import SimpleNamespace

import pytest
import torch

from makemore.data.contexts import build_contexts, make_splits
from makemore.data.datamodule import CharDataModule, TrainMinibatches
from makemore.data.text import read_text_file
from makemore.data.vocab import Vocabulary
from makemore.errors import DataError, MakemoreError


def seed_build_dataset(words, stoi, block_size):
    """The notebook's loop, verbatim apart from names."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = [*context[1:], ix]
    return torch.tensor(X), torch.tensor(Y)


def test_contexts_of_emma_by_hand():
    vocab = Vocabulary.from_items(["emma"])
    x, y = build_contexts(["emma"], vocab, block_size=3)[:]
    pairs = [f"{vocab.display(c)} -> {vocab.display([t])}" for c, t in zip(x.tolist(), y.tolist(), strict=True)]
    assert pairs == ["... -> e", "..e -> m", ".em -> m", "emm -> a", "mma -> ."]


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_contexts_equal_the_seed_loop(block_size):
    words = ["emma", "olivia", "ava", "isabella", "sophia", "x"]
    vocab = Vocabulary.from_items(words)
    stoi = {**vocab.stoi, ".": 0}
    expected_x, expected_y = seed_build_dataset(words, stoi, block_size)
    x, y = build_contexts(words, vocab, block_size)[:]
    assert torch.equal(x, expected_x) and torch.equal(y, expected_y)
    assert x.dtype == torch.long and x.shape == (len(expected_y), block_size)


@pytest.mark.parametrize("block_size", [3, 5])
def test_split_sizes_on_names_match_the_seed(names_path, block_size):
    items = read_text_file(names_path)[0]
    splits = make_splits(items, [0.8, 0.1, 0.1], seed=42)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [25626, 3203, 3204]
    vocab = Vocabulary.from_items(items)
    sizes = [len(build_contexts(splits[s], vocab, block_size)) for s in ("train", "val", "test")]
    assert sizes == [182625, 22655, 22866]


def test_split_is_the_seed_shuffle(names_path):
    import random

    words = names_path.read_text().splitlines()
    random.seed(42)
    random.shuffle(words)
    assert make_splits(read_text_file(names_path)[0], [0.8, 0.1, 0.1], 42)["train"] == words[: int(0.8 * len(words))]


def test_read_text_file_strips_bom_crlf_whitespace_and_blank_lines(tmp_path):
    path = tmp_path / "items.txt"
    path.write_bytes("\ufeffanna\r\n  bob \r\n\r\n\t\ncarl".encode())
    assert read_text_file(path)[0] == ["anna", "bob", "carl"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no items"),
        (b"\n  \n\t\n", "no items"),
        (b"caf\xe9\n", "not UTF-8"),
    ],
)
def test_read_text_file_refuses_unusable_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_text_file(path)


def test_read_text_file_refuses_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_text_file(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="directory"):
        read_text_file(tmp_path)


def test_too_few_items_to_split():
    with pytest.raises(DataError, match="too few"):
        make_splits(["a", "b"], [0.8, 0.1, 0.1], seed=42)


class FakePlan:
    """A stand-in for the run's LoopPlan: where the run is, and how many minibatches each call takes."""

    def __init__(self, total: int, in_epoch: int, per_epoch: int, k: int = 1):
        self.at, self.k, self.multi_step = (total, in_epoch, per_epoch), k, k > 1

    def position(self) -> tuple[int, int, int]:
        return self.at

    def next_call(self, total: int, in_epoch: int) -> int:
        return min(self.k, self.at[2] - in_epoch)


def test_minibatches_are_seeded_sized_and_an_epoch_long():
    vocab = Vocabulary.from_items(["emma", "olivia"])
    contexts = build_contexts(["emma", "olivia"], vocab, 3)  # 12 examples: an epoch is 3 minibatches of 4
    loader = TrainMinibatches(contexts, batch_size=4, seed=1)
    assert len(loader) == 3
    batches = list(loader)
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3)] * 3  # one minibatch per training batch
    chunks = list(TrainMinibatches(contexts, 4, seed=1, plan=FakePlan(0, 0, 3, k=2)))
    assert [tuple(x.shape) for x, _ in chunks] == [(2, 4, 3), (1, 4, 3)]  # the epoch's end ends a chunk
    assert torch.equal(torch.cat([x for x, _ in chunks]), torch.stack([x for x, _ in batches]))  # same draws
    again = list(TrainMinibatches(contexts, batch_size=4, seed=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


@pytest.mark.parametrize(("saved_at", "k"), [(6, 1), (6, 3), (7, 3)])
def test_minibatch_sampler_resumes_mid_run_with_the_same_draws(saved_at, k):
    """The state saved after some minibatches continues the same random stream on either path (k minibatches a
    call), also from inside a draw (7 of draws of 3: the loader fetches ahead of the step)."""
    items = ["emma", "olivia", "ava", "isabella", "sophia"]
    contexts = build_contexts(items, Vocabulary.from_items(items), 3)
    per_epoch = len(TrainMinibatches(contexts, 4, seed=1))
    uninterrupted = [x for x, _ in TrainMinibatches(contexts, 4, seed=1)]

    loader = TrainMinibatches(contexts, 4, seed=1, plan=FakePlan(0, 0, per_epoch, k))
    calls = iter(loader)
    taken = 0
    while taken < saved_at:
        x, _ = next(calls)
        taken += len(x) if k > 1 else 1
    state = loader.state_dict()

    for resumed_k in (1, 3):  # resumed on either path
        resumed = TrainMinibatches(contexts, 4, seed=999, plan=FakePlan(saved_at, saved_at, per_epoch, resumed_k))
        resumed.load_state_dict(state)
        rest = [x for chunk, _ in resumed for x in (chunk if resumed_k > 1 else [chunk])]
        assert len(rest) == per_epoch - saved_at
        assert all(torch.equal(a, b) for a, b in zip(rest, uninterrupted[saved_at:], strict=True))


def test_minibatch_sampler_without_state_for_its_step_says_so():
    contexts = build_contexts(["emma"], Vocabulary.from_items(["emma"]), 3)
    resumed = TrainMinibatches(contexts, batch_size=4, seed=1, plan=FakePlan(6, 1, 2))
    resumed.load_state_dict({"generator_state_at_step": {7: torch.Generator().get_state()}})
    with pytest.raises(MakemoreError, match="batch_size"):
        next(iter(resumed))


@pytest.mark.parametrize("view", ["context", "sequence"])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_eval_loader_scores_every_target_of_the_split_once_across_processes(names_path, view, world_size):
    """Each data-parallel process gets its own contiguous share; together they score each target once."""

    dm = CharDataModule(str(names_path), {}, block_size=16, batch_size=32, eval_batch_size=50000, view=view)
    dm.setup()
    every = dm.examples["val"][:][1]
    scored = []
    for rank in range(world_size):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=world_size)
        batches = list(dm.val_dataloader())
        assert batches  # every process has something to score, so each takes part in the reduction
        scored += [y for _, y in batches]
    assert torch.equal(torch.cat(scored), every)
    assert int(every.ne(-100).sum()) == dm.split_sizes["val"] == 22655


def test_each_data_parallel_rank_draws_its_own_minibatches(names_path):
    dm = CharDataModule(str(names_path), {}, block_size=3, batch_size=32, sampler_seed=5)
    dm.setup()
    first = []
    for rank in (0, 1, 0):
        dm.trainer = SimpleNamespace(global_rank=rank, overfit_batches=0)
        first.append(next(iter(dm.train_dataloader()))[0])
    assert not torch.equal(first[0], first[1])
    assert torch.equal(first[0], first[2])
