import pytest
import torch

from makemore.data.contexts import build_contexts, split_items
from makemore.data.datamodule import CharDataModule, RandomMinibatches
from makemore.data.text import read_items
from makemore.data.vocab import Vocabulary
from makemore.errors import DataError, MakemoreError


def seed_build_dataset(words, stoi, block_size):
    """The seed notebook's loop, verbatim apart from names."""
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
    x, y = build_contexts(["emma"], vocab, block_size=3).tensors()
    pairs = [f"{vocab.display(c)} -> {vocab.display([t])}" for c, t in zip(x.tolist(), y.tolist(), strict=True)]
    assert pairs == ["... -> e", "..e -> m", ".em -> m", "emm -> a", "mma -> ."]


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_contexts_equal_the_seed_loop(block_size):
    words = ["emma", "olivia", "ava", "isabella", "sophia", "x"]
    vocab = Vocabulary.from_items(words)
    stoi = {**vocab.stoi, ".": 0}
    expected_x, expected_y = seed_build_dataset(words, stoi, block_size)
    x, y = build_contexts(words, vocab, block_size).tensors()
    assert torch.equal(x, expected_x) and torch.equal(y, expected_y)
    assert x.dtype == torch.long and x.shape == (len(expected_y), block_size)


@pytest.mark.parametrize("block_size", [3, 5])
def test_split_sizes_on_names_match_the_seed(names_path, block_size):
    items = read_items(names_path)
    splits = split_items(items, [0.8, 0.1, 0.1], seed=42)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [25626, 3203, 3204]
    vocab = Vocabulary.from_items(items)
    sizes = [len(build_contexts(splits[s], vocab, block_size)) for s in ("train", "val", "test")]
    assert sizes == [182625, 22655, 22866]


def test_split_is_the_seed_shuffle(names_path):
    import random

    words = names_path.read_text().splitlines()
    random.seed(42)
    random.shuffle(words)
    assert split_items(read_items(names_path), [0.8, 0.1, 0.1], 42)["train"] == words[: int(0.8 * len(words))]


def test_read_items_strips_bom_crlf_whitespace_and_blank_lines(tmp_path):
    path = tmp_path / "items.txt"
    path.write_bytes("\ufeffanna\r\n  bob \r\n\r\n\t\ncarl".encode())
    assert read_items(path) == ["anna", "bob", "carl"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no items"),
        (b"\n  \n\t\n", "no items"),
        (b"caf\xe9\n", "not UTF-8"),
    ],
)
def test_read_items_refuses_unusable_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_items(path)


def test_read_items_refuses_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_items(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="directory"):
        read_items(tmp_path)


def test_too_few_items_to_split():
    with pytest.raises(DataError, match="too few"):
        split_items(["a", "b"], [0.8, 0.1, 0.1], seed=42)


def test_random_minibatches_are_seeded_and_sized():
    vocab = Vocabulary.from_items(["emma", "olivia"])
    contexts = build_contexts(["emma", "olivia"], vocab, 3)
    batches = list(RandomMinibatches(contexts, batch_size=4, max_steps=7, steps_per_call=3, seed=1))
    assert [tuple(x.shape) for x, _ in batches] == [(3, 4, 3), (3, 4, 3), (1, 4, 3)]
    again = list(RandomMinibatches(contexts, batch_size=4, max_steps=7, steps_per_call=3, seed=1))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))


@pytest.mark.parametrize("fetched_ahead", [0, 1])
def test_minibatch_sampler_resumes_mid_run_with_the_same_draws(fetched_ahead):
    """The state saved at step 6 continues the same random stream, whether or not the loader had
    already drawn step 6's batch (Lightning may fetch ahead) when the checkpoint was written."""
    contexts = build_contexts(["emma", "olivia", "ava"], Vocabulary.from_items(["emma", "olivia", "ava"]), 3)
    uninterrupted = [x for x, _ in RandomMinibatches(contexts, batch_size=4, max_steps=15, steps_per_call=3, seed=1)]

    loader = RandomMinibatches(contexts, batch_size=4, max_steps=15, steps_per_call=3, seed=1)
    batches = iter(loader)
    for _ in range(2 + fetched_ahead):  # steps 0-5 trained, maybe 6-8 fetched already
        next(batches)
    state = loader.state_dict()

    resumed = RandomMinibatches(contexts, batch_size=4, max_steps=15, steps_per_call=3, seed=999, start_step=6)
    resumed.load_state_dict(state)
    assert len(resumed) == 5  # Lightning counts calls over the whole run
    rest = [x for x, _ in resumed]
    assert len(rest) == 3
    assert all(torch.equal(a, b) for a, b in zip(rest, uninterrupted[2:], strict=True))


def test_minibatch_sampler_without_state_for_its_step_says_so():
    contexts = build_contexts(["emma"], Vocabulary.from_items(["emma"]), 3)
    resumed = RandomMinibatches(contexts, batch_size=4, max_steps=15, steps_per_call=3, seed=1, start_step=7)
    resumed.load_state_dict({"generator_state_at_step": {6: torch.Generator().get_state()}})
    with pytest.raises(MakemoreError, match="steps_per_call"):
        next(iter(resumed))


@pytest.mark.parametrize("view", ["context", "sequence"])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_eval_loader_scores_every_target_of_the_split_once_across_processes(names_path, view, world_size):
    """Each data-parallel process gets its own contiguous share; together they score each target once."""
    from types import SimpleNamespace

    dm = CharDataModule(str(names_path), {}, block_size=16, batch_size=32, eval_batch_size=50000, view=view)
    dm.setup()
    every = dm.examples["val"].tensors()[1]
    scored = []
    for rank in range(world_size):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=world_size)
        batches = list(dm.val_dataloader())
        assert batches  # every process has something to score, so each takes part in the reduction
        scored += [y for _, y in batches]
    assert torch.equal(torch.cat(scored), every)
    assert int(every.ne(-100).sum()) == dm.split_sizes["val"] == 22655


def test_each_data_parallel_rank_draws_its_own_minibatches(names_path):
    from types import SimpleNamespace

    dm = CharDataModule(str(names_path), {}, block_size=3, batch_size=32, steps_per_call=1, sampler_seed=5)
    dm.setup()
    first = []
    for rank in (0, 1, 0):
        dm.trainer = SimpleNamespace(max_steps=10, global_step=0, global_rank=rank)
        first.append(next(iter(dm.train_dataloader()))[0])
    assert not torch.equal(first[0], first[1])
    assert torch.equal(first[0], first[2])
