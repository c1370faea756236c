"""What a user reads and relies on: a run's output in a log file, short runs and odd intervals, a sweep with a
failing job, sample/eval options checked at the door, and the run as TensorBoard shows it."""

import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.custom_scalar import layout_pb2

from makemore.config import check_eval_options, check_sample_options, validate_config
from makemore.errors import ConfigError
from makemore.resolvers import register_resolvers, run_label

from .conftest import REPO, run_script, summary_rows, tensorboard_dir

NOISE = ("Tip:", "litlogger", "LeafSpec", "Training:", "Epoch 0", "Validation", "\x1b[", "\r", "Traceback", "Warn")
# Said again elsewhere or nothing to act on: the RNG seed (in the config), no TPU, the stop at max_steps (the summary
# says it), Lightning's one-row model table with "Total FLOPs: 0" (the summary gives the parameters).
NOISE += ("Seed set to", "TPU available", "`Trainer.fit` stopped", "Total FLOPs", "Trainable params")


TREE = "│├└┌"  # the config tree


def test_short_runs_and_odd_intervals_just_work_and_read_like_a_log(names_path, tmp_path):
    runs = {
        "short": ["trainer.max_steps=300"],  # shorter than val_every=10000: validates at its end
        "odd": ["trainer.max_steps=450", "val_every=150"],  # 150 is no multiple of 100
    }

    def run(name):
        return run_script("train.py", f"data.path={names_path}", *runs[name], f"hydra.run.dir={tmp_path / name}")

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(runs, pool.map(run, runs), strict=True))
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-3000:])
        output = result.stdout + result.stderr
        assert not [fragment for fragment in NOISE if fragment in output], (name, output)
        messages = [line for line in output.splitlines() if line.strip() and line.lstrip()[0] not in TREE]
        counts = Counter(messages)  # the config tree may repeat a value (model.block_size, data.block_size)
        assert [line for line, n in counts.items() if n > 1] == [], name  # every message once
        progress = [line for line in result.stderr.splitlines() if line.startswith("step ")]  # on stderr
        steps = runs[name][0].split("=")[1]
        assert progress[-1].startswith(f"step {steps}/{steps} | loss "), (name, progress)
        assert all(part in progress[-1] for part in ("| val ", "steps/s")), progress[-1]
        assert "ETA" not in progress[-1], progress  # nothing left: no "ETA 00:00" (under a second left: none either)
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        summary = result.stdout.strip().splitlines()[-4:]  # the run ends with a short summary for a person
        assert summary[0].startswith(f"done: mlp with 11,897 parameters, {int(steps):,} steps in ")
        assert f"val {metrics['val_loss']:.4f}  test {metrics['test_loss']:.4f}" in summary[1]
        assert summary[3].startswith(f"run dir: {tmp_path / name}")
    assert json.loads((tmp_path / "short" / "metrics.json").read_text())["best_step"] == 300
    events = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "odd"))
    events.Reload()
    (run,) = events.Runs()
    assert [e.step for e in events.Scalars(run, "val_loss")] == [149, 299, 449]  # Lightning's axis: steps before
    assert [e.step for e in events.Scalars(run, "train_loss")] == [99, 199, 299, 399, 449]


def test_a_failing_job_of_a_sweep_is_one_line_and_the_others_run(names_path, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "hidden=0,16", "trainer.max_steps=100", f"data.path={names_path}", f"hydra.sweep.dir={sweep}"]
    result = run_script("train.py", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    failures = [line for line in output.splitlines() if line.startswith("job ")]
    assert len(failures) == 1 and failures[0].startswith("job 0 (hidden=0 "), output[-3000:]
    assert failures[0].endswith("failed: hidden must be a positive integer, got 0")
    assert [r["status"] for r in summary_rows(sweep)] == ["ok", "failed"]
    assert result.stderr.strip().splitlines()[-1] == "makemore: error: 1 of 2 jobs failed (see the failed rows above)"


def compose_tool(name: str, *overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("n=0", "n must be a positive integer, got 0"),
        ("n=abc", "n must be a positive integer, got 'abc'"),
        ("n=2.5", "n must be a positive integer, got 2.5"),
        ("top_k=0", "top_k must be a positive integer, got 0"),
        ("temperature=-1", "temperature must be a number > 0, or 0 for greedy decoding, got -1"),
        ("temperature=abc", "temperature must be a number"),
        ("max_len=0", "max_len must be a positive integer, got 0"),
        ("seed=1.5", "seed must be an integer, got 1.5"),
        ("mark_new=maybe", "mark_new must be true or false"),
        ("ckpt=null", "ckpt is required: pass ckpt=<run dir> or ckpt=<file.ckpt>"),
    ],
)
def test_every_sample_option_is_checked_with_its_range(override, message):
    cfg = compose_tool("sample", "ckpt=some/run", override)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_sample_options(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval_batch_size=0", "eval_batch_size must be a positive integer"),
        ("out=3", "out must be a file path or null"),
        ("ckpt=null", "ckpt is required"),
    ],
)
def test_every_eval_option_is_checked_with_its_range(override, message):
    with pytest.raises(ConfigError, match=message):
        check_eval_options(compose_tool("eval", "ckpt=some/run", override))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr_find.min_lr=0", "lr_find.min_lr must be a positive number, got 0"),
        ("lr_find.max_lr=abc", "lr_find.max_lr must be a positive number, got 'abc'"),
        ("lr_find.min_lr=2", "lr_find.min_lr=2 must be below lr_find.max_lr=1.0"),
        ("lr_find.num_training=0", "lr_find.num_training must be at least 10 sweep steps, got 0"),
        ("lr_find.num_training=5", "lr_find.num_training must be at least 10 sweep steps, got 5"),
        ("lr_find.skip_begin=-1", "lr_find.skip_begin must be a whole number from 0 to num_training - 3 = 997"),
        ("lr_find.skip_begin=998", "lr_find.skip_begin must be a whole number from 0 to num_training - 3 = 997"),
        ("lr_find.early_stop_threshold=1", "lr_find.early_stop_threshold must be a number > 1, or null, got 1"),
        ("lr_find.apply=maybe", "lr_find.apply must be true or false"),
    ],
)
def test_every_lr_find_option_is_checked_with_its_range(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(compose_tool("train", override))


def test_lr_find_refuses_a_bad_option_in_one_line_before_its_run_dir_exists(tmp_path):
    result = run_script("lr_find.py", "lr_find.skip_begin=999", f"hydra.run.dir={tmp_path / 'lr'}")
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.strip().splitlines() == [
        "makemore: error: lr_find.skip_begin must be a whole number from 0 to num_training - 3 = 997 "
        "(the suggestion needs points after it), got 999"
    ]
    assert not (tmp_path / "lr").exists()


def test_the_lr_finders_skip_follows_its_length():
    """A shorter sweep skips the same share of its start (the default skip of 100 would leave a 100-step sweep
    nothing to suggest from)."""
    assert compose_tool("train").lr_find.skip_begin == 100
    settings = compose_tool("train", "lr_find.num_training=100").lr_find
    assert settings.skip_begin == 10
    validate_config(compose_tool("train", "lr_find.num_training=100"))


@pytest.mark.slow  # moved out of the default suite (5-minute budget); CI runs it with -m slow
def test_sample_and_eval_refuse_bad_options_in_one_line(short_run):
    cases = [("sample.py", [f"ckpt={short_run}", "n=0"], "n must be a positive integer, got 0")]
    cases += [("sample.py", [], "ckpt is required"), ("eval.py", [], "ckpt is required")]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: run_script(c[0], *c[1]), cases))
    for (_, _, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.strip() == f"makemore: error: {message}" + result.stderr.strip().split(message, 1)[1]
        assert len(result.stderr.strip().splitlines()) == 1


def test_sampling_when_the_training_file_is_gone_says_so_once(short_run, tmp_path):
    ckpt = torch.load(short_run / "checkpoints" / "best.ckpt", weights_only=True)
    ckpt["hyper_parameters"]["data"]["path"] = str(tmp_path / "moved-away.txt")
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    result = run_script("sample.py", f"ckpt={moved}", "n=5")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 5 and "(in training data)" not in result.stdout
    notes = result.stderr.strip().splitlines()
    assert len(notes) == 1 and "not marked new or seen" in notes[0] and "moved-away.txt" in notes[0]


def test_greedy_sampling_is_temperature_zero(short_run):
    result = run_script("sample.py", f"ckpt={short_run}", "n=3", "temperature=0", "mark_new=false")
    assert result.returncode == 0, result.stderr
    items = result.stdout.splitlines()
    assert len(items) == 3 and len(set(items)) == 1


def test_tensorboard_names_the_run_and_charts_train_and_val_loss_together(short_run):
    events = EventMultiplexer().AddRunsFromDirectory(str(short_run))
    events.Reload()
    (run,) = events.Runs()
    assert run == f"tensorboard/{tensorboard_dir(short_run).name}"
    assert "trainer.max_steps=250" in run  # says which run it is: the overrides that made it
    content = events.PluginRunToTagToContent("custom_scalars")[run]
    (config,) = content  # TensorBoard's Custom Scalars tab reads this layout
    layout = layout_pb2.Layout()
    layout.ParseFromString(events.Tensors(run, config)[0].tensor_proto.string_val[0])
    charts = {chart.title: list(chart.multiline.tag) for category in layout.category for chart in category.chart}
    assert charts["loss (train and val)"] == ["train_loss", "val_loss"]
    assert {"train_loss", "val_loss"} <= set(events.GetAccumulator(run).Tags()["scalars"])


def test_name_names_the_run():
    assert run_label(compose_tool("train", "name=my_try")) == "my_try"
    assert run_label(compose_tool("train")) == "mlp"  # no overrides: the model's name


def test_progress_lines_show_the_rate_since_the_previous_line(monkeypatch, capsys):
    from types import SimpleNamespace

    from makemore.training import callbacks
    from makemore.training.plan import LoopPlan

    plan = object.__new__(LoopPlan)  # only its total_steps is read
    plan.total_steps = 400
    trainer = SimpleNamespace(callbacks=[plan], global_step=0, log_every_n_steps=100, is_global_zero=True)
    module = SimpleNamespace(last_losses={"train_loss": 2.5})
    clock = iter([0.0, 1.0, 5.0])  # 200 steps in 1 s, then 200 in 4 s
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    progress = callbacks.StepProgress(every=200, terminal=False)
    progress.on_train_start(trainer, module)
    for trainer.global_step in (200, 400):
        progress.on_train_batch_end(trainer, module)
    progress.on_train_end(trainer, module)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" | ")[2] for line in lines] == ["200 steps/s", "50 steps/s"], lines  # since start: 80
    assert [line.split(" | ")[3:] for line in lines] == [["ETA 00:01"], []], lines  # 200 steps left at 200/s; none
