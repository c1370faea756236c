"""Experiment tracking and run conveniences, read back through each tool's own reader: TensorBoard's event
files, the CSV file, MLflow's client and server, the offline W&B run's files; names, tags, the printed
config, --help, the debug presets and local overrides."""

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.resolvers import register_resolvers

from .conftest import REPO, run_script

STEPS = ["trainer.max_steps=2000", "val_every=500", "log_every=100"]


@pytest.fixture(scope="module")
def tracked(names_path, tmp_path_factory) -> dict:
    """One named, tagged run logged to TensorBoard, CSV and MLflow at once (logger=many)."""
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    result = run_script(
        "train.py",
        f"data.path={names_path}",
        *STEPS,
        "logger=many",
        f"logger.mlflow.tracking_uri={uri}",
        "name=my_try",
        "tags=[smoke,cpu]",
        f"outputs_dir={root}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (root / "my_try").iterdir()
    return {"run_dir": run_dir, "uri": uri, "stdout": result.stdout, "stderr": result.stderr}


def test_a_new_mlflow_database_leaves_the_runs_own_output_alone(tracked):
    """MLflow creates its database through alembic, which reconfigures Python's logging: the run's summary
    still reaches the console and train.log, and the database's migration log does not."""
    output = tracked["stdout"] + tracked["stderr"]
    assert not [noise for noise in ("alembic", "MLflow database", "Experiment with name") if noise in output], output
    assert "done: mlp with 11,897 parameters, 2,000 steps" in tracked["stdout"]
    assert "(metrics.json, samples.txt, checkpoints/, tensorboard/, csv/)" in tracked["stdout"]  # what is there
    log = (tracked["run_dir"] / "train.log").read_text()
    assert "done: mlp with 11,897 parameters, 2,000 steps" in log and "alembic" not in log


def test_a_named_run_gets_its_dir_and_its_name_in_every_logger(tracked):
    run_dir = tracked["run_dir"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", run_dir.name)  # outputs/<name>/<date>_<time>
    assert (run_dir / "tensorboard" / "my_try").is_dir() and (run_dir / "csv" / "my_try" / "metrics.csv").is_file()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracked["uri"])
    (run,) = client.search_runs([client.get_experiment_by_name("makemore").experiment_id])
    assert run.info.run_name == "my_try" and {"smoke", "cpu"} <= run.data.tags.keys()


def test_every_logger_gets_the_same_series_on_the_optimizer_step_axis(tracked):
    from mlflow.tracking import MlflowClient

    run_dir = tracked["run_dir"]
    events = EventAccumulator(str(run_dir / "tensorboard" / "my_try"))
    events.Reload()
    client = MlflowClient(tracked["uri"])
    (run,) = client.search_runs([client.get_experiment_by_name("makemore").experiment_id])
    with (run_dir / "csv" / "my_try" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for tag, steps in (("train_loss", list(range(99, 2000, 100))), ("val_loss", [499, 999, 1499, 1999])):
        tensorboard = [(e.step, e.value) for e in events.Scalars(tag)]
        mlflow = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, tag))
        table = [(int(r["step"]), float(r[tag])) for r in rows if r.get(tag)]
        assert [s for s, _ in tensorboard] == [s for s, _ in mlflow] == [s for s, _ in table] == steps, tag
        for (_, a), (_, b), (_, c) in zip(tensorboard, mlflow, table, strict=True):
            assert abs(a - b) < 1e-6 and abs(a - c) < 1e-6, tag
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.metrics["results/test_loss"] == pytest.approx(metrics["test_loss"])  # the final losses
    assert run.data.params["model/hidden"] == "200" and run.data.params["optimizer/lr"] == "0.1"  # the knobs
    assert "hidden: 200" in (run_dir / "csv" / "my_try" / "hparams.yaml").read_text()


def test_the_config_is_printed_as_a_tree_and_saved(tracked):
    printed = tracked["stdout"]
    assert printed.startswith("config\n") and "├── model" in printed and "hidden: 200" in printed
    saved = (tracked["run_dir"] / "config_tree.txt").read_text()
    assert "callbacks" in saved and "lr_find" in saved  # the whole config is saved; the print shows the run's parts
    assert "callbacks" not in printed
    for said_elsewhere in ("default_root_dir", "save_dir", "sha256"):  # the run dir once; data.default: unread
        assert said_elsewhere in saved and said_elsewhere not in printed, said_elsewhere


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # starts MLflow's web server
def test_mlflow_ui_serves_the_run(tracked):
    port = free_port()
    beside = Path(sys.executable).parent / "mlflow"  # this environment's MLflow (a venv's bin/ need not be on PATH)
    mlflow = str(beside) if beside.exists() else shutil.which("mlflow")
    server = subprocess.Popen(
        [mlflow, "ui", "--backend-store-uri", tracked["uri"], "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the web server's workers and job runner stop with it
    )
    try:
        api = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{api}/experiments/get-by-name?experiment_name=makemore") as response:
                    experiment = json.load(response)["experiment"]
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "mlflow ui did not start"
                time.sleep(0.5)
        request = urllib.request.Request(
            f"{api}/runs/search",
            data=json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            (run,) = json.load(response)["runs"]
        assert run["info"]["run_name"] == "my_try"
        assert {m["key"] for m in run["data"]["metrics"]} >= {"train_loss", "val_loss", "lr", "results/val_loss"}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the server and every process it started
        server.wait(timeout=30)


def wandb_records(path: Path):
    """The protobuf records of an offline W&B run file (a LevelDB-style log of 32 KiB blocks after a 7-byte
    header), parsed with wandb's own message definitions."""
    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + payload)
            pending = b""
            yield record
        elif kind in (2, 3):
            pending += payload


@pytest.mark.slow  # W&B starts its own service process
def test_wandb_offline_run_holds_the_series_config_name_and_tags(names_path, tmp_path):
    run_dir = tmp_path / "run"
    args = [f"data.path={names_path}", "trainer.max_steps=300", "val_every=150", "logger=wandb", "name=wb_try"]
    result = run_script("train.py", *args, "tags=[smoke]", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    history, config, runs = [], {}, []
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = record.history.item
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "run":
            runs.append(record.run)
    train_loss = [(row["trainer/global_step"], row["train_loss"]) for row in history if "train_loss" in row]
    assert [step for step, _ in train_loss] == [99, 199, 299]  # Lightning's step axis, as in every logger
    assert [row["trainer/global_step"] for row in history if "val_loss" in row] == [149, 299]
    assert config["model"]["hidden"] == 200 and config["model"]["name"] == "mlp"
    assert runs[0].display_name == "wb_try" and list(runs[0].tags) == ["smoke"]


def test_help_says_what_the_script_does_its_knobs_and_presets():
    result = run_script("train.py", "--help")
    assert result.returncode == 0
    for text in ("makemore: train a character-level language model", "The knobs used most", "name=my_try"):
        assert text in result.stdout
    assert re.search(r"experiment: .*makemore_transformer", result.stdout) and "model: bigram, bow" in result.stdout


def test_a_fast_dev_run_goes_end_to_end_and_writes_only_to_a_temp_dir(names_path, tmp_path):
    before = sorted(p.name for p in (REPO / "outputs").iterdir())
    result = run_script("train.py", "debug=fdr", f"data.path={names_path}", env={"TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "makemore-fdr").glob("*/*")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["test_loss"] > 0  # train, val and test all ran
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "samples.txt").is_file()
    assert sorted(p.name for p in (REPO / "outputs").iterdir()) == before


def test_the_profile_preset_reports_where_the_training_time_goes(names_path, tmp_path):
    run_dir = tmp_path / "profiled"
    args = ["debug=profile", f"data.path={names_path}", "trainer.max_steps=200", "val_every=200"]
    result = run_script("train.py", *args, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    report = (run_dir / "profile" / "fit-profile.txt").read_text()
    section = report.split("Profile stats for: [Strategy]SingleDeviceStrategy.training_step")[1]
    assert "(backward)" in section and "(training_step)" in section


def test_local_overrides_apply_when_present(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    register_resolvers()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        assert compose("train").hidden == 200  # no conf/local/default.yaml: nothing changes
    (conf / "local" / "default.yaml").write_text("# @package _global_\nhidden: 77\ndata:\n  path: /my/data.txt\n")
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("train")
        assert cfg.model.hidden == 77 and cfg.data.path == "/my/data.txt"
        assert compose("train", overrides=["hidden=5"]).hidden == 5  # the command line still wins
