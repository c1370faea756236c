"""makemore: character-level language models that make more of what they are given."""

__version__ = "0.1.0"
