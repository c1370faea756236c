"""Trainer arguments and Lightning callbacks as a Lightning user reaches for them: each one does what Lightning's
docs say in optimizer steps (a training batch is one minibatch, an epoch ceil(train examples / batch_size) of
them), on the multi-step path as on Lightning's own step-by-step loop, or is refused at the door in one line."""

import json
import logging
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.config import validate_config
from makemore.data.datamodule import CharDataModule
from makemore.errors import ConfigError, TrainingDiverged
from makemore.evaluation import mean_nll
from makemore.resolvers import register_resolvers
from makemore.training.checkpoint import load_checkpoint
from makemore.training.module import LitLanguageModel
from makemore.training.train import build_module, build_trainer, prepare_datamodule, train

from .conftest import REPO, run_script, tensorboard_dir

# Short runs without the pictures and sampled text (they cost a second a validation and are tested elsewhere).
QUICK = ["~callbacks.embedding_plot", "~callbacks.sample_text", "print_config=false"]
EPOCH_OF_45 = "batch_size=4096"  # 182,625 train targets: an epoch is ceil(182625 / 4096) = 45 minibatches


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO)  # makemore's own notes are INFO records


def config(names_path: Path, run_dir: Path, *overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"data.path={names_path}", *QUICK, f"run_dir={run_dir}", *overrides])
    validate_config(cfg)
    return cfg


def fit(names_path: Path, run_dir: Path, *overrides: str) -> dict:
    """One in-process run as scripts/train.py runs it; its metrics.json."""
    train(config(names_path, run_dir, *overrides))
    return json.loads((run_dir / "metrics.json").read_text())


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def steps(run_dir: Path, tag: str) -> list[int]:
    return [s for s, _ in scalars(run_dir)[tag]]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_both_paths_take_the_same_steps(names_path, tmp_path):
    """steps_per_call=100 (the multi-step path) and 1 (Lightning's automatic optimization) train the same run:
    the same weights, the same logged losses on the same steps."""
    run = ["trainer.max_steps=120", "val_every=50", "log_every=20"]
    fit(names_path, tmp_path / "many", *run)
    fit(names_path, tmp_path / "one", *run, "steps_per_call=1")
    a, b = weights(tmp_path / "many"), weights(tmp_path / "one")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    for tag in ("train_loss", "lr", "val_loss"):
        got, want = scalars(tmp_path / "many")[tag], scalars(tmp_path / "one")[tag]
        assert [s for s, _ in got] == [s for s, _ in want] and all(
            abs(x - y) < 1e-5 for (_, x), (_, y) in zip(got, want, strict=True)
        ), tag


@pytest.mark.parametrize("algorithm", ["norm", pytest.param("value", marks=pytest.mark.slow)])
def test_gradient_clip_val_clips_as_lightning_does(names_path, tmp_path, algorithm):
    """trainer.gradient_clip_val (before: a traceback): the multi-step path clips exactly as Lightning's own
    loop does (the one-step path, where Lightning clips), and clipping changes the run."""
    clip = ["trainer.max_steps=60", "val_every=60", "trainer.gradient_clip_val=0.05"]
    clip.append(f"trainer.gradient_clip_algorithm={algorithm}")
    fit(names_path, tmp_path / "ours", *clip)
    fit(names_path, tmp_path / "lightning", *clip, "steps_per_call=1")
    fit(names_path, tmp_path / "unclipped", "trainer.max_steps=60", "val_every=60")
    ours, lightning, unclipped = (weights(tmp_path / d) for d in ("ours", "lightning", "unclipped"))
    assert all(torch.allclose(ours[k], lightning[k], atol=1e-6) for k in ours)
    assert not all(torch.allclose(ours[k], unclipped[k], atol=1e-3) for k in ours)


def test_accumulate_grad_batches_takes_one_step_per_n_minibatches(names_path, tmp_path, caplog):
    metrics = fit(
        names_path,
        tmp_path / "r",
        "trainer.max_steps=20",
        "val_every=20",
        "log_every=5",
        "trainer.accumulate_grad_batches=4",
    )
    assert metrics["steps"] == 20  # optimizer steps, each over 4 minibatches
    assert steps(tmp_path / "r", "train_loss") == [4, 9, 14, 19]  # every 5 optimizer steps
    notes = [r.getMessage() for r in caplog.records if "one optimizer step per Lightning call" in r.getMessage()]
    assert len(notes) == 1 and "accumulate_grad_batches=4" in notes[0]


@pytest.mark.parametrize("path", ["steps_per_call=100", "steps_per_call=1"])
def test_val_check_interval_counts_optimizer_steps(names_path, tmp_path, path):
    """An int is optimizer steps (before: Lightning calls of 100 steps); a float a fraction of each epoch."""
    fit(names_path, tmp_path / "int", "trainer.max_steps=300", "trainer.val_check_interval=50", path)
    assert steps(tmp_path / "int", "val_loss") == [49, 99, 149, 199, 249, 299]  # after 50, 100, ... steps
    fit(names_path, tmp_path / "float", EPOCH_OF_45, "trainer.max_epochs=2", "trainer.val_check_interval=0.5", path)
    # int(45 x 0.5) = 22: after minibatch 22 and 44 of each epoch (steps 22, 44, 67, 89), and at the last step
    assert steps(tmp_path / "float", "val_loss") == [21, 43, 66, 88, 89]


def test_max_epochs_and_limit_train_batches_count_minibatches(names_path, tmp_path, caplog):
    """max_epochs=2 is 2 x 45 steps (before: all of max_steps ran); limit_train_batches=10 cuts each epoch to 10."""
    metrics = fit(names_path, tmp_path / "epochs", EPOCH_OF_45, "trainer.max_epochs=2", "val_every=1000")
    assert metrics["steps"] == 90
    assert "trainer.max_epochs=2: 90 optimizer steps (45 per epoch)" in caplog.text  # the schedule's length too
    last = torch.load(tmp_path / "epochs" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 90 and last["epoch"] == 1  # the second epoch (0-based), as Lightning counts
    limited = fit(
        names_path,
        tmp_path / "limited",
        EPOCH_OF_45,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=10",
        "val_every=1000",
    )
    assert limited["steps"] == 20


def test_log_every_n_steps_is_the_train_loss_cadence(names_path, tmp_path):
    fit(names_path, tmp_path / "r", "trainer.max_steps=90", "val_every=90", "trainer.log_every_n_steps=30")
    assert steps(tmp_path / "r", "train_loss") == [29, 59, 89]  # before: every 100 whatever it said


def test_limit_val_batches_as_a_fraction_scores_that_part_of_the_split(names_path, tmp_path):
    """0.1: the first 10% of the val split (before: a traceback, the split being one batch)."""
    fit(names_path, tmp_path / "r", "trainer.max_steps=100", "val_every=100", "trainer.limit_val_batches=0.1")
    module, _ = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")
    dm = CharDataModule(str(names_path), {}, block_size=3, batch_size=32)
    dm.setup()
    val = dm.examples["val"]
    n = math.ceil(0.1 * len(val))
    x, y = val[torch.arange(n)]
    part = torch.nn.functional.cross_entropy(module.model(x), y).item()
    (logged,) = [v for _, v in scalars(tmp_path / "r")["val_loss"]]
    assert logged == pytest.approx(part, abs=1e-5)
    assert logged != pytest.approx(mean_nll(module.model, val), abs=1e-4)


def test_overfit_batches_trains_on_that_many_minibatches(names_path, tmp_path):
    """overfit_batches=1 is one minibatch of 32, every step (before: 100 minibatches per call)."""
    metrics = fit(names_path, tmp_path / "r", "trainer.max_steps=300", "val_every=300", "trainer.overfit_batches=1")
    (last_train,) = [v for s, v in scalars(tmp_path / "r")["train_loss"] if s == 299]
    assert last_train < 0.5 < 2.0 < metrics["val_loss"]  # that one batch learned by heart; the rest not


def test_precision_is_a_knob_of_the_default_trainer(names_path, tmp_path):
    metrics = fit(names_path, tmp_path / "r", "trainer.max_steps=50", "val_every=50", "trainer.precision=bf16-mixed")
    assert 2.0 < metrics["val_loss"] < 3.5


def test_progress_bar_and_checkpointing_can_be_turned_off(names_path, tmp_path, capsys):
    metrics = fit(
        names_path,
        tmp_path / "r",
        "trainer.max_steps=100",
        "val_every=50",
        "trainer.enable_progress_bar=false",
        "trainer.enable_checkpointing=false",
    )
    assert "step 100/100" not in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoints").exists()
    assert metrics["best_ckpt"] is None and metrics["best_step"] == 100  # the final weights were scored


def test_min_steps_holds_early_stopping_back(names_path, tmp_path):
    """EarlyStopping stops at the second validation that does not improve by 10 nats, unless min_steps says
    otherwise; min_steps implies Lightning's min_epochs=1, here 45 steps (before: the whole run was one epoch,
    so EarlyStopping never stopped)."""
    early = [
        "+callbacks.early._target_=lightning.pytorch.callbacks.EarlyStopping",
        "+callbacks.early.monitor=val_loss",
        "+callbacks.early.patience=0",
        "+callbacks.early.min_delta=10",
        EPOCH_OF_45,
        "trainer.max_steps=2000",
        "val_every=10",
    ]
    assert fit(names_path, tmp_path / "free", *early)["steps"] == 20
    assert fit(names_path, tmp_path / "held", *early, "trainer.min_steps=100")["steps"] == 100


def test_a_sanity_check_is_never_shown_as_a_validation(names_path, tmp_path, capsys):
    fit(
        names_path,
        tmp_path / "r",
        "trainer.max_steps=200",
        "val_every=100",
        "trainer.num_sanity_val_steps=2",
        "callbacks.progress_bar.every=20",
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    with_val = [int(line.split()[1].split("/")[0]) for line in lines if "| val " in line]
    assert with_val == [100, 200]  # only right after the two validations of the run
    tags = scalars(tmp_path / "r")
    assert [s for s, _ in tags["val_loss"]] == [99, 199]  # the sanity check's val loss is logged nowhere
    train = dict(tags["train_loss"])
    shown = {int(line.split()[1].split("/")[0]): float(line.split("| loss ")[1].split()[0]) for line in lines}
    assert shown[100] == pytest.approx(train[99], abs=1e-4) and shown[200] == pytest.approx(train[199], abs=1e-4)


def test_learning_rate_monitor_logs_on_the_losses_steps(names_path, tmp_path):
    fit(
        names_path,
        tmp_path / "r",
        "trainer.max_steps=300",
        "val_every=100",
        "log_every=50",
        "+callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor",
        "+callbacks.lr_monitor.logging_interval=step",
    )
    tags = scalars(tmp_path / "r")
    assert [s for s, _ in tags["lr-SGD"]] == [s for s, _ in tags["train_loss"]] == [49, 99, 149, 199, 249, 299]
    assert tags["lr-SGD"] == tags["lr"]  # Lightning's monitor and makemore's lr agree, step for step


def test_model_checkpoint_every_n_train_steps_saves_at_those_steps(names_path, tmp_path):
    fit(
        names_path,
        tmp_path / "r",
        "trainer.max_steps=100",
        "val_every=100",
        "+callbacks.every._target_=lightning.pytorch.callbacks.ModelCheckpoint",
        f"+callbacks.every.dirpath={tmp_path / 'every'}",
        "+callbacks.every.every_n_train_steps=30",
        "+callbacks.every.save_top_k=-1",
        "+callbacks.every.filename='{step}'",
    )
    saved = sorted(p.name for p in (tmp_path / "every").iterdir())
    assert saved == ["step=30.ckpt", "step=60.ckpt", "step=90.ckpt"]  # not multiples of the 100 steps per call
    assert torch.load(tmp_path / "every" / "step=60.ckpt", weights_only=True)["global_step"] == 60


def test_max_time_and_timer_stop_the_run(names_path, tmp_path):
    for name, overrides in (
        ("max_time", ['trainer.max_time="00:00:00:02"']),
        (
            "timer",
            ["+callbacks.timer._target_=lightning.pytorch.callbacks.Timer", '+callbacks.timer.duration="00:00:00:02"'],
        ),
    ):
        metrics = fit(names_path, tmp_path / name, "trainer.max_steps=1000000", "val_every=500", *overrides)
        assert 0 < metrics["steps"] < 1000000 and metrics["train_time_s"] < 10, name
        # validated where it stopped (the best checkpoint may be the validation before, at step 1500 say)
        assert steps(tmp_path / name, "val_loss")[-1] == metrics["steps"] - 1, name


def test_ema_weight_averaging_runs_step_by_step(names_path, tmp_path, caplog):
    plain = fit(names_path, tmp_path / "plain", "trainer.max_steps=200", "val_every=100")
    ema = fit(
        names_path,
        tmp_path / "ema",
        "trainer.max_steps=200",
        "val_every=100",
        "+callbacks.ema._target_=lightning.pytorch.callbacks.EMAWeightAveraging",
        "+callbacks.ema.decay=0.9",
    )
    assert "EMAWeightAveraging acts on every training batch" in caplog.text
    assert ema["val_loss"] != pytest.approx(plain["val_loss"], abs=1e-4) and ema["val_loss"] < 3.0


def test_throughput_monitor_logs_on_the_losses_steps(names_path, tmp_path):
    fit(
        names_path,
        tmp_path / "r",
        "trainer.max_steps=100",
        "val_every=100",
        "log_every=25",
        "+callbacks.tp._target_=lightning.pytorch.callbacks.ThroughputMonitor",
        "+callbacks.tp.batch_size_fn._target_=hydra.utils.get_method",
        "+callbacks.tp.batch_size_fn.path=builtins.len",
    )
    tags = scalars(tmp_path / "r")
    throughput = [tag for tag in tags if tag.startswith("train|") or tag.startswith("train/")]
    assert throughput, list(tags)
    assert {s for s, _ in tags[throughput[0]]} <= {s for s, _ in tags["train_loss"]} | {24, 49, 74, 99}


class LoggingModel(LitLanguageModel):
    """What a user writes to log a value of their own."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("mine", 1.0 + self.global_step)
        return loss


def test_self_log_in_a_subclass_lands_on_optimizer_steps(names_path, tmp_path, caplog):
    cfg = config(names_path, tmp_path / "r", "trainer.max_steps=60", "val_every=60", "log_every=20")
    (tmp_path / "r").mkdir()
    datamodule = prepare_datamodule(cfg)
    base = build_module(cfg, datamodule)
    module = LoggingModel(**base.hparams)
    trainer = build_trainer(cfg, module, datamodule)
    trainer.fit(module, datamodule=datamodule)
    tags = scalars(tmp_path / "r")
    assert [s for s, _ in tags["mine"]] == [s for s, _ in tags["train_loss"]] == [19, 39, 59]
    assert "LoggingModel, a subclass" in caplog.text


@pytest.mark.filterwarnings("ignore:Error detected in")  # torch's forward traceback, which is the point
def test_detect_anomaly_stops_at_the_first_nan_in_one_line(names_path, tmp_path):
    with pytest.raises(TrainingDiverged, match=r"trainer.detect_anomaly stopped the run: Function '\w+' returned nan"):
        fit(
            names_path,
            tmp_path / "r",
            "trainer.max_steps=100",
            "val_every=100",
            "trainer.detect_anomaly=true",
            "optimizer.lr=3e38",
            "divergence_factor=1e30",
        )


def test_profiler_simple_reports_and_says_what_it_counts(names_path, tmp_path, caplog, capsys):
    fit(names_path, tmp_path / "r", "trainer.max_steps=200", "val_every=200", "trainer.profiler=simple")
    output = caplog.text + capsys.readouterr().out
    assert "FIT Profiler Report" in output and "run_training_batch" in output
    assert "count calls, not steps" in caplog.text


def test_deterministic_turns_on_torchs_deterministic_algorithms(names_path, tmp_path):
    try:
        a = fit(names_path, tmp_path / "a", "trainer.max_steps=100", "val_every=100", "trainer.deterministic=true")
        assert torch.are_deterministic_algorithms_enabled()
        b = fit(names_path, tmp_path / "b", "trainer.max_steps=100", "val_every=100", "trainer.deterministic=true")
        assert a["val_loss"] == b["val_loss"]
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+trainer.logger=false", "trainer.logger=False is not used here: choose loggers with logger="),
        ("+trainer.callbacks=[]", r"add one with \+callbacks.NAME._target_="),
        ("+trainer.use_distributed_sampler=true", "shares val/test out"),
        ("+trainer.reload_dataloaders_every_n_epochs=1", "every step draws a fresh random minibatch"),
        ("+trainer.limit_test_batches=5", "scores the whole test split"),
        ("+trainer.barebones=true", "logger=null trainer.enable_progress_bar=false"),
        ("+trainer.no_such_flag=1", "not an argument of Lightning's Trainer"),
        ("trainer.val_check_interval=1.5", "val_check_interval must be a whole number of optimizer steps"),
        ("trainer.gradient_clip_algorithm=max", "gradient_clip_algorithm must be norm, value or null"),
        ("trainer.max_steps=-1", "would train forever"),
        ("trainer.limit_val_batches=-1", "limit_val_batches must be"),
        ("trainer.precision=16-mixed", "use 32-true or bf16-mixed"),
    ],
)
def test_what_makemore_cannot_honour_is_refused_with_the_equivalent(names_path, tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        config(names_path, tmp_path / "r", override)


def test_a_refused_trainer_argument_leaves_no_run_dir(names_path, tmp_path):
    result = run_script("train.py", f"data.path={names_path}", "+trainer.barebones=true", f"outputs_dir={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("makemore: error: trainer.barebones=True is not used here")
    assert list(tmp_path.iterdir()) == []


def test_fast_dev_run_runs_a_step_and_saves_nothing(names_path, tmp_path):
    """(before: `checkpoint not found`, exit 2, and a run dir left behind)"""
    (tmp_path / "tmp").mkdir()
    result = run_script(
        "train.py",
        f"data.path={names_path}",
        "trainer.fast_dev_run=true",
        f"outputs_dir={tmp_path}",
        env={"TMPDIR": str(tmp_path / "tmp")},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fast_dev_run: 1 training step and validation ran without error" in result.stdout
    assert list(tmp_path.iterdir()) == [tmp_path / "tmp"]  # its run dir is a temp dir
    assert not list((tmp_path / "tmp").rglob("*.ckpt")) and not list((tmp_path / "tmp").rglob("metrics.json"))


@pytest.mark.slow  # four processes; the default suite keeps its 5-minute budget
def test_hydra_habits(names_path, tmp_path):
    """logger=null works like ~logger; hydra.job.chdir=true finds relative paths from where the user ran;
    +experiment=fast says to drop the +; sample.py/eval.py --help list their own options only."""
    quick = ["trainer.max_steps=20", "val_every=20", "~callbacks.embedding_plot", "~callbacks.sample_text"]
    result = run_script("train.py", f"data.path={names_path}", "logger=null", f"hydra.run.dir={tmp_path / 'a'}", *quick)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "a" / "tensorboard").exists() and (tmp_path / "a" / "metrics.json").exists()

    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text(names_path.read_text())
    result = run_script(
        "train.py", "data.path=mine.txt", "hydra.job.chdir=true", f"hydra.run.dir={tmp_path / 'b'}", *quick, cwd=work
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["split_sizes"]["train"] == 182625

    result = run_script("train.py", "+experiment=fast")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "makemore: error: experiment is a config group already in the defaults list: "
        "use experiment=fast (no +)"
    )
    for script in ("sample.py", "eval.py"):
        text = run_script(script, "--help").stdout
        assert "ckpt=<run dir or .ckpt>" in text and "experiment" not in text and "optimizer" not in text, script


@pytest.mark.slow
def test_devices_2_on_the_default_trainer_trains_data_parallel(names_path, tmp_path):
    result = run_script(
        "train.py",
        f"data.path={names_path}",
        "trainer.devices=2",
        "trainer.max_steps=200",
        "val_every=100",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == 200
