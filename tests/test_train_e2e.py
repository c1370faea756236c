"""Real runs of scripts/train.py in subprocesses, read back from the files they leave."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.evaluation import mean_nll
from makemore.training.checkpoint import load_checkpoint

from .conftest import SHORT_RUN, run_script, summary_rows, tensorboard_dir

METRIC_KEYS = {
    "num_params",
    "vocab_size",
    "split_sizes",
    "steps",
    "train_time_s",
    "steps_per_s",
    "train_loss",
    "val_loss",
    "test_loss",
}


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(tensorboard_dir(run_dir)), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_run_dir_layout(short_run):
    for name in (
        "metrics.json",
        "samples.txt",
        "train.log",
        ".hydra/config.yaml",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (short_run / name).is_file(), name
    assert list(tensorboard_dir(short_run).glob("events.out.tfevents.*"))


def test_metrics_json(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["split_sizes"] == {"train": 182625, "val": 22655, "test": 22866}
    assert metrics["num_params"] == 11897 and metrics["vocab_size"] == 27 and metrics["steps"] == 250
    assert 2.0 < metrics["val_loss"] < 3.3  # learned something from the uniform ln(27) = 3.30


def test_checkpoint_is_self_contained_and_metrics_come_from_best(short_run, names_path):
    module, ckpt = load_checkpoint(short_run / "checkpoints" / "best.ckpt")
    assert module.vocab.size == 27 and module.hparams.model["hidden"] == 200
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert ckpt["global_step"] == metrics["best_step"]
    from makemore.data.datamodule import CharDataModule

    dm = CharDataModule(str(names_path), {}, block_size=3, batch_size=32)
    dm.setup()
    assert mean_nll(module.model, dm.examples["test"]) == pytest.approx(metrics["test_loss"], abs=1e-6)
    _last, last_ckpt = load_checkpoint(short_run / "checkpoints" / "last.ckpt")
    assert last_ckpt["global_step"] == 250


def test_tensorboard_scalars(short_run):
    tags = scalars(short_run)
    # Lightning's step axis: the steps taken before the logged one (the 50th step's loss is at 49, the
    # notebook's `i`), for the losses, the lr and a validation after step 100 alike
    assert [s for s, _ in tags["train_loss"]] == [49, 99, 149, 199, 249]
    assert [s for s, _ in tags["val_loss"]] == [99, 199, 249]  # and at the last step
    assert [s for s, _ in tags["lr"]] == [49, 99, 149, 199, 249]
    lrs = dict(tags["lr"])  # the lr each logged step used: 0.01 from i = 125 on, half of 250
    assert lrs[99] == pytest.approx(0.1) and lrs[149] == pytest.approx(0.01)
    metrics = json.loads((short_run / "metrics.json").read_text())
    assert min(v for _, v in tags["val_loss"]) == pytest.approx(metrics["val_loss"], abs=1e-4)
    assert tags["results/val_loss"][0][1] == pytest.approx(metrics["val_loss"], abs=1e-6)


def test_hparams_for_tensorboard_hparams_tab(short_run):
    acc = EventAccumulator(str(tensorboard_dir(short_run)))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in content
    assert b"hidden" in content["_hparams_/session_start_info"]


def test_samples(short_run):
    samples = (short_run / "samples.txt").read_text().splitlines()
    assert len(samples) == 20
    assert all(set(s) <= set("abcdefghijklmnopqrstuvwxyz") for s in samples)


@pytest.mark.slow  # subprocess runs (11-16 s): the default suite's 5-minute budget (317 s in CI); CI runs -m slow
def test_multirun_writes_one_dir_per_job(names_path, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_script(
        "train.py",
        "-m",
        f"data.path={names_path}",
        "emb_dim=2,10",
        "model.hidden=16",
        "trainer.max_steps=100",
        "val_every=100",
        "log_every=100",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    params = [json.loads((sweep / str(job) / "metrics.json").read_text())["num_params"] for job in (0, 1)]
    assert params == [27 * 2 + 6 * 16 + 16 + 16 * 27 + 27, 27 * 10 + 30 * 16 + 16 + 16 * 27 + 27]
    assert (sweep / "multirun.yaml").is_file()
    assert [r["status"] for r in summary_rows(sweep)] == ["ok", "ok"]

    # sweep_report rebuilds the table of a partial sweep (job 1 as if killed) and plots a knob
    (sweep / "1" / "metrics.json").unlink()
    (sweep / "summary.csv").unlink()
    report = run_script("sweep_report.py", str(sweep), "--plot", "emb_dim")
    assert report.returncode == 0, report.stderr
    assert sorted(r["status"] for r in summary_rows(sweep)) == ["ok", "unfinished"]
    assert (sweep / "val_loss_vs_emb_dim.png").read_bytes()[:4] == b"\x89PNG"


def test_default_dataset_is_downloaded_into_the_cache(names_path, tmp_path):
    """No data.path: prepare_data fetches names.txt (here from a local server) into data/ and trains."""
    payload = names_path.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        result = run_script(
            "train.py",
            f"data.default.url=http://127.0.0.1:{httpd.server_address[1]}/names.txt",
            "trainer.max_steps=50",
            "val_every=50",
            "log_every=50",
            "steps_per_call=50",
            f"hydra.run.dir={tmp_path / 'run'}",
            cwd=tmp_path,
        )
    finally:
        httpd.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    cached = tmp_path / "data" / "names.txt"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 50


def test_checkpoint_weights_are_finite(short_run):
    module, _ = load_checkpoint(short_run / "checkpoints" / "best.ckpt")
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_same_config_and_seed_give_identical_results(names_path, short_run, tmp_path):
    """Determinism: a second run of the short run's config matches it exactly, losses and samples."""
    again = tmp_path / "again"
    result = run_script("train.py", f"data.path={names_path}", *SHORT_RUN, f"hydra.run.dir={again}")
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (short_run, again))
    for key in ("train_loss", "val_loss", "test_loss", "best_step"):
        assert first[key] == second[key], key
    assert (short_run / "samples.txt").read_text() == (again / "samples.txt").read_text()
