"""Character vocabulary built from the data; id 0 is reserved for the item boundary."""

from collections.abc import Iterable, Sequence
from itertools import takewhile

BOUNDARY_ID = 0
BOUNDARY_DISPLAY = "."  # how the boundary is shown in contexts, as in the notebook ("..e -> m")


class Vocabulary:
    """Sorted data characters get ids 1..V-1; id 0 is the boundary, never a data character (so '.' may be one)."""

    def __init__(self, chars: Sequence[str]):
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise ValueError("vocabulary characters must be sorted and unique")
        self.chars: list[str] = list(chars)
        self.stoi: dict[str, int] = {c: i + 1 for i, c in enumerate(self.chars)}
        self.size = len(self.chars) + 1  # token ids, the boundary included (27 for names.txt)

    @classmethod
    def from_items(cls, items: Iterable[str]) -> "Vocabulary":
        return cls(sorted(set("".join(items))))

    def encode(self, item: str) -> list[int]:
        return [self.stoi[c] for c in item]

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of `ids` up to the first boundary."""
        return "".join(self.chars[i - 1] for i in takewhile(lambda i: i != BOUNDARY_ID, ids))

    def display(self, ids: Iterable[int]) -> str:
        """Every id as a character, the boundary shown as '.' (for contexts like '..e')."""
        return "".join(BOUNDARY_DISPLAY if i == BOUNDARY_ID else self.chars[i - 1] for i in ids)

    def labels(self) -> list[str]:
        """One visible, single-line label per id (for plots and the projector TSV), control characters escaped."""
        shown = ["␠" if c == " " else c if c.isprintable() else c.encode("unicode_escape").decode() for c in self.chars]
        return ["<s>" if BOUNDARY_DISPLAY in self.stoi else BOUNDARY_DISPLAY, *shown]

    def unknown_chars(self, items: Iterable[str]) -> list[str]:
        return sorted(set("".join(items)) - set(self.stoi))
