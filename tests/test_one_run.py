"""Nothing lost, nothing silently different: a run's length as Lightning counts it (epochs included), one run
whichever path a resume takes, run dirs that never collide, all-or-nothing writes, threads that fit the machine."""

import json
import logging
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.config import validate_config
from makemore.resolvers import register_resolvers
from makemore.threads import busy_tasks, free_cores
from makemore.training.checkpoint import load_checkpoint
from makemore.training.train import train

from .conftest import REPO, tensorboard_dir

QUICK = ["~callbacks.embedding_plot", "~callbacks.sample_text", "print_config=false"]


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO)


def fit(names_path: Path, run_dir: Path, *overrides: str) -> dict:
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.path={names_path}", *QUICK, f"run_dir={run_dir}", *overrides])
    validate_config(cfg)
    train(cfg)
    return json.loads((run_dir / "metrics.json").read_text())


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_the_epoch_idiom_sets_the_run_and_the_schedule_length(names_path, tmp_path, caplog):
    """max_steps=-1 (Lightning's default) with max_epochs: the step decay falls at half of the 714 steps of an
    epoch of 256 (before: refused, `scheduler.milestones ... got [0]`); a cosine preset runs too."""
    epoch = ["trainer.max_epochs=1", "trainer.max_steps=-1", "batch_size=256", "val_every=1000", "log_every=1"]
    metrics = fit(names_path, tmp_path / "step", *epoch, "hidden=16")
    assert metrics["steps"] == 714 == math.ceil(182625 / 256)
    assert "trainer.max_epochs=1: 714 optimizer steps" in caplog.text
    lr = dict(scalars(tmp_path / "step", "lr"))
    assert {s for s, v in lr.items() if v < 0.05} == set(range(357, 714))  # the decay at int(0.5 x 714)
    lstm = fit(
        names_path, tmp_path / "lstm", "experiment=speedrun", *epoch[:2], "batch_size=2048", "hidden=8", "log_every=1"
    )
    windows = 32033 * 8 // 10  # names of <= 15 characters: one window each
    assert lstm["steps"] == math.ceil(windows / 2048)
    lr = [v for _, v in scalars(tmp_path / "lstm", "lr")]
    assert lr[-1] < lr[0] / 10  # the cosine decays over the epoch


def test_once_per_epoch_validation_is_lightnings(names_path, tmp_path):
    """max_epochs=2 with val_check_interval=1.0: val after each epoch of 179 minibatches of 1024, logged at
    Lightning's steps 178 and 357; the hint for an interval longer than an epoch points there."""
    run = ["trainer.max_epochs=2", "trainer.max_steps=-1", "batch_size=1024", "trainer.val_check_interval=1.0"]
    fit(names_path, tmp_path / "r", *run, "hidden=16")
    assert [s for s, _ in scalars(tmp_path / "r", "val_loss")] == [178, 357]
    from makemore.errors import ConfigError

    with pytest.raises(ConfigError, match=r"set trainer.val_check_interval=1.0 to validate once per epoch"):
        fit(names_path, tmp_path / "hint", *run[:3], "trainer.check_val_every_n_epoch=1", "hidden=16")


@pytest.mark.slow  # the default suite's 5-minute budget; CI runs -m slow
def test_a_resume_on_the_other_path_continues_the_same_run(names_path, tmp_path):
    """last.ckpt of the multi-step path resumed with a per-step Lightning callback (LearningRateMonitor: the
    one-step path) ends where the uninterrupted run ends (before: val 2.1491 against 2.1615)."""
    run = ["trainer.max_steps=2000", "val_every=1000", "hidden=32", "scheduler.milestones=[1000]"]
    whole = fit(names_path, tmp_path / "whole", *run)
    fit(names_path, tmp_path / "first", *run[1:], "trainer.max_steps=1000")
    monitor = ["+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor"]
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = fit(names_path, tmp_path / "resumed", *run, *monitor, f"ckpt_path={ckpt}")
    assert resumed["steps"] == 2000 and resumed["resumed_from_step"] == 1000
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], abs=1e-4)
    assert [s for s, _ in scalars(tmp_path / "resumed", "train_loss")] == list(range(1099, 2000, 100))


@pytest.mark.slow  # the default suite's 5-minute budget; CI runs -m slow
def test_a_model_checkpoint_file_resumes_as_last_ckpt_does(names_path, tmp_path):
    """A user's ModelCheckpoint(every_n_train_steps=500) file (Lightning's `epoch=0-step=500.ckpt`) continues the
    run exactly: the same steps, losses and weights as the uninterrupted run."""
    every = ["+callbacks.every._target_=lightning.pytorch.callbacks.ModelCheckpoint",
             "+callbacks.every.every_n_train_steps=500", "+callbacks.every.save_top_k=-1",
             f"+callbacks.every.dirpath={tmp_path / 'every'}"]  # fmt: skip
    run = ["trainer.max_steps=1000", "val_every=500", "hidden=32", "log_every=100"]
    whole = fit(names_path, tmp_path / "whole", *run, *every)
    (saved,) = [p for p in (tmp_path / "every").glob("*.ckpt") if "step=500" in p.name]
    resumed = fit(names_path, tmp_path / "resumed", *run, f"ckpt_path='{saved}'")
    assert (resumed["steps"], resumed["resumed_from_step"]) == (1000, 500)
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], abs=1e-6)
    a, b = (
        load_checkpoint(d / "checkpoints" / "last.ckpt")[0].state_dict()
        for d in (tmp_path / "whole", tmp_path / "resumed")
    )
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow  # the default suite's 5-minute budget; CI runs -m slow
def test_muon_resumes_exactly(names_path, tmp_path):
    """optimizer=muon with a cosine schedule, stopped and continued: the uninterrupted run's val loss, and the
    lr Muon steps with is the schedule's (before: its lr stayed while the logged one decayed)."""
    run = ["model=gru", "optimizer=muon", "scheduler=cosine", "scheduler.total_steps=600", "scheduler.warmup_steps=15",
           "trainer.max_steps=600", "val_every=300", "hidden=16", "block_size=8", "log_every=100"]  # fmt: skip
    whole = fit(names_path, tmp_path / "whole", *run)
    fit(names_path, tmp_path / "first", *run[:-4], "trainer.max_steps=300", *run[-3:])
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = fit(names_path, tmp_path / "resumed", *run, f"ckpt_path={ckpt}")
    assert resumed["val_loss"] == pytest.approx(whole["val_loss"], abs=1e-6)


@pytest.mark.slow  # the default suite's 5-minute budget; CI runs -m slow
def test_two_runs_started_together_get_two_run_dirs(names_path, tmp_path):
    """The default run dir (outputs/<date>/<time>) of two runs started in the same second: two dirs, each with its
    own metrics.json, checkpoints and TensorBoard events."""
    args = [f"data.path={names_path}", "trainer.max_steps=50", "val_every=50", "log_every=50", "hidden=8",
            f"outputs_dir={tmp_path}", "print_config=false"]  # fmt: skip
    command = [sys.executable, str(REPO / "scripts" / "train.py"), *args]
    runs = [subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()[-2000:]
    dirs = sorted(p.parent for p in tmp_path.glob("*/*/metrics.json"))
    assert len(dirs) == 2, dirs
    for d in dirs:
        assert (d / "checkpoints" / "best.ckpt").is_file() and list((d / "tensorboard").glob("*/events.*"))


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_a_dir_a_live_run_holds_is_refused_before_anything_is_written(names_path, tmp_path, kind):
    """A run dir (or a sweep dir) another live process holds: a second run (sweep) into it is refused in one line,
    and Hydra writes nothing there (the holder's .hydra/ and train.log stay its own)."""
    import fcntl

    from .conftest import run_script

    held = tmp_path / "held"
    held.mkdir()
    with (held / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242\n")
        lock.flush()
        args = [f"data.path={names_path}", "trainer.max_steps=5", f"hydra.{kind}.dir={held}"]
        result = run_script("train.py", *(["-m", "hidden=8,16"] if kind == "sweep" else []), *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert (
        f"makemore: error: another run (pid 4242) is writing into {held}: wait for it to end, or pass another "
        f"hydra.{kind}.dir" in result.stderr
    )
    assert sorted(p.name for p in held.iterdir()) == [".lock"]


def test_no_validation_still_leaves_a_checkpoint(names_path, tmp_path):
    """limit_val_batches=0: last.ckpt holds the final weights, so the run can be resumed, sampled, evaluated."""
    metrics = fit(names_path, tmp_path / "r", "trainer.max_steps=100", "trainer.limit_val_batches=0", "hidden=8")
    assert metrics["best_ckpt"] is None
    _, ckpt = load_checkpoint(tmp_path / "r")  # the run dir: best.ckpt, or last.ckpt without one
    assert ckpt["global_step"] == 100


def test_free_cores_leave_the_busy_ones(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})
    for others, free in ((1, 1), (0, 2), (9, 1)):
        monkeypatch.setattr("makemore.threads.busy_tasks", lambda others=others: others)
        assert free_cores() == free


def test_busy_tasks_count_what_runs_now_not_the_last_minute():
    """A process busy beside this one counts while it runs and not once it ends (the load average would count it
    for a minute: a run started right after another took one thread of two)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        with_spinner = busy_tasks()
    finally:
        spinner.kill()
        spinner.wait()
    assert with_spinner >= busy_tasks() + 1  # read right after: what else runs (a test beside this one) is the same


@pytest.mark.slow  # the default suite's 5-minute budget; CI runs -m slow
@pytest.mark.skipif(shutil.which("mount") is None, reason="needs mount")
def test_a_full_disk_ends_the_run_in_one_line_and_leaves_loadable_checkpoints(names_path, tmp_path):
    """A 3 MB tmpfs: the run fails with one `makemore: error:` line and no traceback; every .ckpt left loads."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "train.py"), f"data.path={names_path}", "model=gru",
             "hidden=256", "trainer.max_steps=400", "val_every=100", "ckpt_every=50", "log_every=50",
             f"hydra.run.dir={disk / 'run'}", "print_config=false"],
            cwd=REPO, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("makemore: error:")]
        assert len(errors) == 1 and "space" in errors[0], result.stderr[-3000:]
        for ckpt in disk.rglob("*.ckpt"):
            load_checkpoint(ckpt)
    finally:
        subprocess.run(["umount", str(disk)])


def test_smaller_habits_each_get_one_line(names_path, tmp_path):
    """A Lightning file name unquoted, bad data, compare.py refusing: one line each (exit 2), no run dir left."""
    from .conftest import run_script

    unquoted = run_script("train.py", "ckpt_path=/tmp/epoch=0-step=500.ckpt")
    assert unquoted.returncode == 2 and "must be quoted: ckpt_path='...'" in unquoted.stderr
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"ab\x00c\n")
    bad = run_script("train.py", f"data.path={binary}", f"outputs_dir={tmp_path / 'out'}", "print_config=false")
    assert bad.returncode == 2 and "looks binary" in bad.stderr
    assert not any((tmp_path / "out").rglob("*"))  # no run dir behind, nor its date folder
    refused = run_script("compare.py", str(tmp_path / "nothing"))
    assert refused.returncode == 2 and refused.stderr.startswith("compare: error:")


def test_early_stopping_says_it_ended_the_run(names_path, tmp_path, caplog):
    stop = ["+callbacks.es._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.es.monitor=val_loss",
            "+callbacks.es.patience=0", "+callbacks.es.min_delta=1.0", "trainer.min_epochs=0"]  # fmt: skip
    metrics = fit(names_path, tmp_path / "r", *stop, "trainer.max_steps=1000", "val_every=100", "hidden=8")
    assert metrics["steps"] == 200  # the second validation did not improve by 1.0
    assert "early stopping: EarlyStopping on val_loss ended the run at step 200" in caplog.text
