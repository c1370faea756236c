"""makemore: character-level language models that make more of what they are given."""

__version__ = "0.1.0"

import os

# OpenMP's threads sleep between parallel regions instead of spinning, which on a busy machine steals the cores
# other processes need (a user's own setting wins). Set before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
