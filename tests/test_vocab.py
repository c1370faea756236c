from makemore.data.vocab import BOUNDARY_ID, Vocabulary


def test_vocabulary_is_sorted_data_characters_after_the_boundary():
    vocab = Vocabulary.from_items(["emma", "olivia", "ava"])
    assert vocab.chars == ["a", "e", "i", "l", "m", "o", "v"]
    assert vocab.size == 8
    assert vocab.encode("emma") == [2, 5, 5, 1]
    assert vocab.decode([2, BOUNDARY_ID, 1]) == "e"  # the boundary ends an item
    assert 0 not in vocab.stoi.values()


def test_names_vocabulary_has_27_tokens(names_path):
    vocab = Vocabulary.from_items(names_path.read_text().splitlines())
    assert vocab.size == 27
    assert vocab.stoi["a"] == 1 and vocab.stoi["z"] == 26


def test_dot_in_the_data_is_an_ordinary_character():
    vocab = Vocabulary.from_items(["a.b", "c"])
    assert vocab.chars == [".", "a", "b", "c"]
    ids = vocab.encode("a.b")
    assert BOUNDARY_ID not in ids
    assert vocab.decode([*ids, BOUNDARY_ID, 3]) == "a.b"  # decode stops at the boundary, keeps the '.'


def test_display_shows_boundary_as_dot():
    vocab = Vocabulary.from_items(["emma"])
    assert vocab.display([0, 0, vocab.stoi["e"]]) == "..e"
