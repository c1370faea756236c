"""The two views of a split, chosen by the model's `view`: (context, next id) examples or item windows."""

from collections.abc import Sequence

from makemore.data.contexts import ContextSet, build_contexts
from makemore.data.sequences import SequenceSet, build_sequences
from makemore.data.vocab import Vocabulary

Examples = ContextSet | SequenceSet
VIEWS = ("context", "sequence")


def build_examples(view: str, items: Sequence[str], vocab: Vocabulary, block_size: int) -> Examples:
    """Context view: one example per target, the last block_size ids before it. Sequence view: windows of
    up to block_size targets. Both score the same targets, so their losses are comparable."""
    if view == "context":
        return build_contexts(items, vocab, block_size)
    if view == "sequence":
        return build_sequences(list(items), vocab, block_size)
    raise ValueError(f"unknown view {view!r}: use one of {VIEWS}")
