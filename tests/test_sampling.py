import string

import pytest
import torch

from makemore.data.vocab import Vocabulary
from makemore.errors import MakemoreError
from makemore.models import MLP
from makemore.sampling import generate, sample_next

VOCAB = Vocabulary(list(string.ascii_lowercase))


@pytest.fixture(scope="module")
def model() -> MLP:
    torch.manual_seed(0)
    m = MLP(VOCAB.size, 3, 10, 64)
    with torch.no_grad():  # make the boundary likely enough that items end after a few characters
        m.b[0] = 2.0
    return m


def test_same_seed_same_items_other_seed_other_items(model):
    a = generate(model, VOCAB, 50, seed=7)
    assert a == generate(model, VOCAB, 50, seed=7)
    assert a != generate(model, VOCAB, 50, seed=8)
    assert len(a) == 50 and all(set(item) <= set(string.ascii_lowercase) for item in a)


def test_prefix_starts_every_item(model):
    items = generate(model, VOCAB, 30, seed=0, prefix="ka")
    assert all(item.startswith("ka") for item in items)
    longer = generate(model, VOCAB, 5, seed=0, prefix="abcdef")  # longer than the context
    assert all(item.startswith("abcdef") for item in longer)


def test_prefix_with_unknown_characters_is_refused(model):
    with pytest.raises(MakemoreError, match="does not know"):
        generate(model, VOCAB, 5, prefix="K9")


def test_temperature_and_top_k(model):
    greedy = generate(model, VOCAB, 20, seed=0, top_k=1)
    assert len(set(greedy)) == 1  # top_k=1 is argmax decoding ...
    assert generate(model, VOCAB, 20, seed=5, temperature=0) == greedy  # ... and so is temperature 0
    cold = generate(model, VOCAB, 200, seed=0, temperature=0.05)
    hot = generate(model, VOCAB, 200, seed=0, temperature=2.0)
    assert len(set(cold)) < len(set(hot))
    assert cold.count(greedy[0]) > 150 > hot.count(greedy[0])  # a cold sampler almost always says the argmax


def test_max_len_bounds_generation(model):
    with torch.no_grad():
        saved = model.b[0].item()
        model.b[0] = -100.0  # the boundary is never drawn
    try:
        items = generate(model, VOCAB, 10, seed=0, max_len=7)
    finally:
        with torch.no_grad():
            model.b[0] = saved
    assert all(len(item) == 7 for item in items)


def test_sample_next_matches_the_distribution():
    probs = torch.softmax(torch.randn(3, 27, generator=torch.Generator().manual_seed(0)), dim=-1)
    g = torch.Generator().manual_seed(1)
    draws = torch.stack([sample_next(probs, g) for _ in range(20000)])  # (20000, 3)
    freq = torch.stack([torch.bincount(draws[:, r], minlength=27) for r in range(3)]).float() / 20000
    assert (freq - probs).abs().max() < 0.015
