"""sample.py, eval.py, lr_find.py, the pictures and debug=overfit, run as a user runs them."""

import json
import math

import pytest
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.resolvers import register_resolvers

from .conftest import REPO, run_script, tensorboard_dir

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # subprocess runs (11-16 s): the default suite's 5-minute budget (317 s in CI); CI runs -m slow
def test_sample_is_reproducible_and_reports_new_fraction(short_run):
    first = run_script("sample.py", f"ckpt={short_run}", "n=8", "seed=3")
    again = run_script("sample.py", f"ckpt={short_run}/checkpoints/best.ckpt", "n=8", "seed=3")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout
    lines = first.stdout.splitlines()
    assert len(lines) == 8
    assert "new: " in first.stderr and "/8" in first.stderr


def test_sample_prefix(short_run):
    result = run_script("sample.py", f"ckpt={short_run}", "n=10", "prefix=ka", "mark_new=false")
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("ka") for line in result.stdout.splitlines())


def test_sample_missing_checkpoint_is_one_clear_error(tmp_path):
    result = run_script("sample.py", f"ckpt={tmp_path / 'nope.ckpt'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "checkpoint not found" in result.stderr


def test_eval_matches_metrics_json(short_run, tmp_path):
    out = tmp_path / "eval.json"
    result = run_script("eval.py", f"ckpt={short_run}/checkpoints/best.ckpt", f"out={out}")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(out.read_text())
    metrics = json.loads((short_run / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        assert evaluated[split]["loss"] == pytest.approx(metrics[f"{split}_loss"], abs=1e-4)
        assert evaluated[split]["targets"] == metrics["split_sizes"][split]
    assert evaluated["test"]["bits_per_char"] == pytest.approx(metrics["test_loss"] / 0.6931471805599453, abs=1e-4)
    assert "perplexity" in result.stdout


def test_eval_on_a_file_with_unknown_characters_names_them(short_run, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(["Anna", "bob", "Émile"] * 10) + "\n")
    result = run_script("eval.py", f"ckpt={short_run}", f"data.path={other}", f"out={tmp_path / 'e.json'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "never seen" in result.stderr and "A" in result.stderr and "É" in result.stderr
    assert not (tmp_path / "e.json").exists()


def test_embedding_picture_projector_and_samples_in_tensorboard(short_run):
    assert (short_run / "embedding.png").read_bytes()[:8] == PNG_MAGIC
    acc = EventAccumulator(str(tensorboard_dir(short_run)), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    assert [e.step for e in acc.Images("embedding")] == [99, 199, 249]  # with val_loss, on Lightning's axis
    texts = acc.Tensors("samples/text_summary")
    assert [e.step for e in texts] == [99, 199, 249]
    assert len(texts[-1].tensor_proto.string_val[0].decode().split("  \n")) == 10
    configs = list((short_run / "tensorboard").rglob("projector_config.pbtxt"))
    assert configs
    metadata = list((short_run / "tensorboard").rglob("metadata.tsv"))
    assert metadata and metadata[0].read_text().split() == [".", *"abcdefghijklmnopqrstuvwxyz"]


def test_lr_find_writes_plot_and_suggestion(names_path, tmp_path):
    run_dir = tmp_path / "lr"
    result = run_script(
        "lr_find.py",
        f"data.path={names_path}",
        "lr_find.num_training=200",
        "lr_find.skip_begin=20",
        f"hydra.run.dir={run_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "suggested lr:" in result.stdout
    assert (run_dir / "lr_find.png").read_bytes()[:8] == PNG_MAGIC
    found = json.loads((run_dir / "lr_find.json").read_text())
    assert len(found["lr"]) == len(found["loss"]) == 200
    assert found["lr"][0] == pytest.approx(1e-3, rel=0.05) and found["lr"][-1] == pytest.approx(1.0, rel=0.05)
    assert 1e-3 <= found["suggested_lr"] <= 1.0
    acc = EventAccumulator(str(tensorboard_dir(run_dir)), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Images("lr_find")
    assert not list(run_dir.glob(".lr_find*.ckpt"))  # the finder's temporary checkpoint is gone


@pytest.mark.slow  # subprocess runs (11-16 s): the default suite's 5-minute budget (317 s in CI); CI runs -m slow
def test_overfit_one_batch_reaches_the_seeds_loss(names_path, tmp_path):
    run_dir = tmp_path / "overfit"
    result = run_script("train.py", "debug=overfit", f"data.path={names_path}", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split_sizes"] == {"train": 32, "val": 32, "test": 32}
    assert metrics["num_params"] == 3481
    assert metrics["train_loss"] < 0.3  # the notebook: 0.2561 after 1000 steps


def test_lr_find_sweeps_into_divergence_without_stopping(names_path, tmp_path):
    """The sweep is meant to end where the loss blows up: training's divergence stop stays out of it."""
    from makemore.lr_find import find_lr

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"data.path={names_path}",
                "lr_find.num_training=60",
                "lr_find.max_lr=100",
                "log_every=10",
                "lr_find.skip_begin=5",
                f"run_dir={tmp_path}",
            ],
        )
    find_lr(cfg)
    found = json.loads((tmp_path / "lr_find.json").read_text())
    assert len(found["loss"]) == 60 and max(found["loss"][-10:]) > 20 * math.log(27)  # it did diverge
