"""The family table and picture (scripts/compare.py), and the markdown tables of compare and sweep."""

import json
import shutil
from pathlib import Path

import pytest

from makemore.compare import MIXED_FIX, markdown
from makemore.plots import family_figure
from makemore.sweep import markdown_table

from .conftest import run_script

TINY = ["trainer.max_steps=20", "val_every=20", "log_every=20", "steps_per_call=10", "hidden=16"]


@pytest.fixture(scope="module")
def runs(names_path, tmp_path_factory) -> dict[str, Path]:
    """Three tiny runs in one process (a multirun): on a word file, on another word file, and on a copy of
    the first at another path."""
    # Not the first file reversed: that has the very same targets per split, which would then tell
    # nothing apart where no checkpoint records a sha256.
    root = tmp_path_factory.mktemp("compare")
    names = names_path.read_text().splitlines()[:1200]
    (root / "copy").mkdir()
    words, other, copy = root / "words.txt", root / "other.txt", root / "copy" / "words.txt"
    words.write_text("\n".join(names[:600]) + "\n")
    other.write_text("\n".join(names[600:]) + "\n")
    shutil.copy(words, copy)
    sweep = root / "sweep"
    result = run_script("train.py", "-m", f"data.path={words},{other},{copy}", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    return {"words": sweep / "0", "other": sweep / "1", "copy": sweep / "2"}


def data_file(run: Path) -> str:
    """The data file a run's job trained on, as the checkpoint records it (resolved)."""
    (override,) = [o for o in (run / ".hydra" / "overrides.yaml").read_text().split() if "data.path=" in o]
    return str(Path(override.partition("=")[2]).resolve())


def test_runs_on_different_data_files_are_refused_and_nothing_is_written(runs, tmp_path):
    out = tmp_path / "out"
    result = run_script("compare.py", str(runs["words"]), str(runs["other"]), "--out", str(out))
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("compare: error: the runs were trained on different data: ")
    assert data_file(runs["words"]) in line and data_file(runs["other"]) in line
    assert line.endswith("pass --mixed to put them in one table anyway")
    assert result.stdout == "" and not out.exists()


def test_mixed_puts_the_runs_in_one_table_with_a_data_column(runs, tmp_path):
    out = tmp_path / "out"
    result = run_script("compare.py", str(runs["words"]), str(runs["other"]), "--out", str(out), "--mixed")
    assert result.returncode == 0, result.stderr[-3000:]
    text = (out / "compare.md").read_text()
    assert result.stdout.startswith(text)
    heading, blank, header, _, *rows = text.splitlines()
    assert heading.startswith("data: 2 different data files or splits") and blank == ""
    assert header.endswith("| test | data |")
    assert sorted(row.split(" | ")[-1].removesuffix(" |") for row in rows) == sorted(
        data_file(runs[r]) for r in ("words", "other")
    )
    assert (out / "compare.png").stat().st_size > 0


def test_the_same_file_at_two_paths_is_one_data_line_above_the_table(runs, tmp_path):
    out = tmp_path / "out"
    result = run_script("compare.py", str(runs["words"]), str(runs["copy"]), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    sizes = json.loads((runs["words"] / "metrics.json").read_text())["split_sizes"]
    targets = f"{sizes['train']:,} train / {sizes['val']:,} val / {sizes['test']:,} test targets"
    first, second = data_file(runs["words"]), data_file(runs["copy"])  # equal losses: either may come first
    lines = {f"data: {a} ({targets}; the same file as {b})" for a, b in ((first, second), (second, first))}
    heading, blank, header, *_ = (out / "compare.md").read_text().splitlines()
    assert heading in lines and blank == "" and header.endswith("| test |")  # no data column
    assert result.stdout.splitlines()[0] == heading


def test_a_run_without_a_data_record_is_not_taken_for_the_same_data(runs, tmp_path):
    """metrics.json of an older makemore has no data record: compare cannot tell, so it says so."""
    old = tmp_path / "old"
    shutil.copytree(runs["copy"], old)
    metrics = json.loads((old / "metrics.json").read_text())
    del metrics["data"]
    (old / "metrics.json").write_text(json.dumps(metrics))
    result = run_script("compare.py", str(runs["words"]), str(old), "--out", str(tmp_path / "out"))
    assert result.returncode != 0 and "no data recorded" in result.stderr and MIXED_FIX in result.stderr
    assert not (tmp_path / "out").exists()


ROWS = [
    {"run": "experiment=seed", "model": "mlp", "num_params": 11897, "train_time_s": 74.2, "val_loss": 2.1692},
    {"run": "experiment=bigram", "model": "bigram", "num_params": 729, "train_time_s": 5.4, "val_loss": 2.454},
    {"run": "experiment=gpt", "model": "transformer", "num_params": 204000, "train_time_s": 300.0, "val_loss": 2.02},
]


def test_family_figure_names_its_axes_and_labels_each_point(tmp_path):
    fig = family_figure(ROWS, subtitle="data: words.txt")
    params, time = fig.axes
    assert params.get_xlabel() == "parameters (log scale)"  # not the last run's name
    assert time.get_xlabel() == "training time (s) (log scale)"
    assert "val loss" in params.get_ylabel()
    assert "data: words.txt" in fig.get_suptitle()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert sorted(t.get_text() for t in ax.texts) == ["bigram", "gpt", "seed"]
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
        inside = ax.get_window_extent(renderer)
        assert all(inside.contains(b.x0, b.y0) and inside.contains(b.x1, b.y1) for b in boxes)
    fig.savefig(tmp_path / "family.png")
    assert (tmp_path / "family.png").stat().st_size > 0


def test_markdown_tables_are_unchanged():
    """Both renderers share makemore.tables; their output is pinned as it was before they did."""
    rows = [
        {**ROWS[0], "steps": 200000, "train_time_s": 74.234, "train_loss": 2.12664, "test_loss": 2.16688},
        {**ROWS[2], "steps": 20000, "train_time_s": 12345.67, "train_loss": 1.9, "val_loss": 2.0, "test_loss": 2.05},
    ]
    assert markdown(rows) == (
        "| run | model | parameters | steps | train time (s) | train | val | test |\n"
        "|---|---|---|---|---|---|---|---|\n"
        "| experiment=seed | mlp | 11,897 | 200,000 | 74.2 | 2.1266 | 2.1692 | 2.1669 |\n"
        "| experiment=gpt | transformer | 204,000 | 20,000 | 12,345.7 | 1.9000 | 2.0000 | 2.0500 |\n"
    )
    jobs = [
        {"job": "0", "status": "ok", "overrides": "emb_dim=2", "num_params": 11897, "steps": 100}
        | {"train_loss": 2.5, "val_loss": 2.51234, "test_loss": 2.6, "train_time_s": 3.14159},
        {"job": "1", "status": "failed", "overrides": "data.path=a|b", "error": "DataError: x | y"},
        {"job": "2", "status": "unfinished", "overrides": ""},
    ]
    assert markdown_table(jobs) == (
        "| job | status | overrides | num_params | steps | train_loss | val_loss | test_loss | train_time_s | error |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        "| 0 | ok | emb_dim=2 | 11897 | 100 | 2.5000 | 2.5123 | 2.6000 | 3.1 |  |\n"
        "| 1 | failed | data.path=a\\|b |  |  |  |  |  |  | DataError: x \\| y |\n"
        "| 2 | unfinished |  |  |  |  |  |  |  |  |\n"
    )
