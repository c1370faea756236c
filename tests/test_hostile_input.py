"""Odd but legitimate files train correctly; files that can't be trained on, or that change while being
read, are refused. Training runs in-process here (each case is a real, short Lightning fit)."""

import hashlib
import json
import random
import unicodedata
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from makemore.data.datamodule import CharDataModule
from makemore.errors import DataError
from makemore.resolvers import register_resolvers
from makemore.training.checkpoint import load_checkpoint
from makemore.training.train import train

from .conftest import REPO

TINY = ["trainer.max_steps=100", "val_every=50", "log_every=50", "steps_per_call=50", "sample.num_samples=5"]


def train_on(lines: list[str], tmp_path: Path, *overrides: str) -> tuple[dict, list[str], Path]:
    """Write `lines` under a directory whose name has spaces, train on them, return metrics and samples."""
    data = tmp_path / "my data" / "items file.txt"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_dir = tmp_path / "a run"
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.path={data}", *TINY, f"run_dir={run_dir}", *overrides])
    train(cfg)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("train_loss", "val_loss", "test_loss"))
    samples = (run_dir / "samples.txt").read_text(encoding="utf-8").splitlines()
    return metrics, samples, run_dir


def projector_labels(run_dir: Path) -> list[str]:
    """The character labels TensorBoard's Projector shows (metadata.tsv of the embedding C)."""
    (metadata,) = (run_dir / "tensorboard").glob("*/*/C/metadata.tsv")
    return metadata.read_text(encoding="utf-8").splitlines()


def test_dots_in_lines_are_characters_not_boundaries(tmp_path):
    lines = [f"st.{name}" for name in ("john", "anne", "mary", "paul", "luke")] * 4 + ["a.b.c", "mr.x"]
    metrics, _, run_dir = train_on(lines, tmp_path)
    assert metrics["vocab_size"] == len(set("".join(lines))) + 1  # '.' is a data character, plus the boundary
    # every example is counted: one per character plus the end of each item
    assert sum(metrics["split_sizes"].values()) == sum(len(line) + 1 for line in lines)
    labels = projector_labels(run_dir)
    assert labels[0] == "<s>" and "." in labels


def test_unicode_letters_and_multi_code_point_emoji(tmp_path):
    decomposed = unicodedata.normalize("NFD", "chloé")  # e + combining accent: 6 code points
    lines = ["zoë", decomposed, "ñandú", "Ωmega", "👩‍👩‍👧", "🇫🇷", "josé🎉", "björk", "dvořák", "łukasz"] * 3
    metrics, samples, run_dir = train_on(lines, tmp_path)
    # NFC: the decomposed é is the same one character as the precomposed é in "josé"
    vocab = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")[0].vocab.chars
    assert "\u0301" not in vocab and vocab.count("é") == 1 and metrics["vocab_size"] == len(vocab) + 1
    assert len(samples) == 5 and all(set(s) <= set(vocab) for s in samples)


def test_tabs_inside_lines(tmp_path):
    lines = [f"first\tsecond{i % 7}" for i in range(30)]
    metrics, _, run_dir = train_on(lines, tmp_path)
    assert metrics["vocab_size"] == len(set("".join(lines))) + 1
    labels = projector_labels(run_dir)
    assert len(labels) == metrics["vocab_size"] and "\\t" in labels  # one TSV row per character


@pytest.mark.parametrize("model", ["mlp", "transformer"])  # the context view and the sequence view (windows)
def test_a_100000_character_line(tmp_path, model):
    lines = ["ab" * 50_000] + ["abc", "bca", "cab"] * 5
    metrics, samples, _ = train_on(lines, tmp_path, f"model={model}", "batch_size=8")
    assert sum(metrics["split_sizes"].values()) == sum(len(line) + 1 for line in lines)
    assert all(len(s) <= 100 for s in samples)  # sample.max_len bounds generation


def test_one_distinct_character(tmp_path):
    lines = ["a" * (i % 9 + 1) for i in range(40)]
    metrics, samples, _ = train_on(lines, tmp_path)
    assert metrics["vocab_size"] == 2
    assert all(set(s) <= {"a"} for s in samples)


def test_a_vocabulary_of_thousands_of_cjk_characters(tmp_path):
    rng = random.Random(0)
    chars = [chr(0x4E00 + i) for i in range(4000)]
    lines = ["".join(rng.choice(chars) for _ in range(rng.randint(2, 6))) for _ in range(4000)]
    metrics, samples, run_dir = train_on(lines, tmp_path)
    assert metrics["vocab_size"] == len(set("".join(lines))) + 1 > 3900
    assert (run_dir / "embedding.png").stat().st_size > 0  # drawn unlabelled
    assert all(set(s) <= set(chars) for s in samples)


def test_a_file_that_changes_between_prepare_data_and_setup(tmp_path):
    path = tmp_path / "growing.txt"
    path.write_text("ann\nbob\n" * 10)
    datamodule = CharDataModule(str(path), {}, block_size=3, batch_size=4)
    datamodule.prepare_data()
    with path.open("a") as f:  # another process still writing it
        f.write("cid\n")
    with pytest.raises(DataError, match="changed while it was being prepared and read"):
        datamodule.setup("fit")


def test_the_checkpoint_records_the_bytes_it_trained_on(tmp_path):
    path = tmp_path / "items.txt"
    path.write_text("ann\nbob\n" * 10)
    datamodule = CharDataModule(str(path), {}, block_size=3, batch_size=4)
    datamodule.prepare_data()
    datamodule.setup("fit")
    path.write_text("something else entirely\n" * 10)  # rewritten after it was read
    assert datamodule.record["sha256"] == hashlib.sha256(b"ann\nbob\n" * 10).hexdigest()
