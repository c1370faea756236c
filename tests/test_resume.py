"""Interrupted runs continue exactly: SIGKILL + resume=, SIGTERM + ckpt_path=, Ctrl-C, and the refusals."""

import functools
import json
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from .conftest import REPO, run_script, tensorboard_dir

# 2000 steps, validated every 500, last.ckpt every 250: a kill lands part-way with checkpoints behind it.
RUN = ["trainer.max_steps=2000", "val_every=500", "ckpt_every=250", "log_every=50", "steps_per_call=50"]
LOSSES = ("train_loss", "val_loss", "test_loss")


def start_run(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(run_dir: Path, min_step: int, process: subprocess.Popen, timeout: float = 180) -> int:
    """Poll last.ckpt until it holds at least `min_step` steps; return its step."""
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended before step {min_step}: {process.stderr.read()[-2000:]}"
        if last.exists():
            step = torch.load(last, weights_only=True)["global_step"]
            if step >= min_step:
                return step
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no checkpoint at step >= {min_step} within {timeout} s")


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """What TensorBoard shows: EventAccumulator applies the purge a resumed run's writer records."""
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_same_run(resumed: Path, reference: Path, same_curves: bool = True) -> None:
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (resumed, reference))
    for key in LOSSES:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key
    assert (got["steps"], got["best_step"]) == (want["steps"], want["best_step"])
    weights, reference_weights = final_weights(resumed), final_weights(reference)
    assert all(torch.equal(weights[k], reference_weights[k]) for k in reference_weights)
    for tag in ("train_loss", "lr", "val_loss") if same_curves else ():  # one continuous curve, every step once
        assert scalars(resumed, tag) == scalars(reference, tag), tag


def stop_message(process: subprocess.Popen, signum: int) -> tuple[str, int]:
    """Send `signum`; return the one error line the run prints and the step it names."""
    process.send_signal(signum)
    stderr = process.communicate(timeout=180)[1]
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if "makemore: error" in line]
    assert len(lines) == 1 and f"stopped by {signal.Signals(signum).name} at step" in lines[0], stderr[-2000:]
    return lines[0], int(lines[0].split("at step ")[1].split()[0])


@pytest.mark.slow  # three training processes (~40 s): the default suite's 5-minute budget; CI runs -m slow
def test_killed_and_stopped_runs_continue_bit_for_bit(names_path, tmp_path):
    data = f"data.path={names_path}"
    run = [*RUN[1:], "trainer.max_steps=8000"]  # long enough that the killed run is killed before its end
    runs = {name: start_run(tmp_path / name, data, *run) for name in ("reference", "killed", "stopped")}

    # SIGTERM (a scheduler's pre-emption): finish the call, save, exit 143 saying how to resume. First, at its first
    # checkpoint: waiting for the killed run's later one first let this run reach its end on a busy machine.
    wait_for_checkpoint(tmp_path / "stopped", 250, runs["stopped"])
    message, stopped_step = stop_message(runs["stopped"], signal.SIGTERM)
    assert f"resume={tmp_path / 'stopped'}" in message
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == stopped_step < 8000

    # SIGKILL gives no chance to save: the run continues from its last periodic checkpoint.
    saved_step = wait_for_checkpoint(tmp_path / "killed", 750, runs["killed"])
    runs["killed"].send_signal(signal.SIGKILL)
    runs["killed"].wait()
    assert saved_step < 8000 and not (tmp_path / "killed" / "metrics.json").exists()

    # resume= takes the run's own config from its .hydra/overrides.yaml and writes into the same dir;
    # ckpt_path= continues into a new run dir (the same overrides given again).
    resumed = start_run(tmp_path / "killed", f"resume={tmp_path / 'killed'}")
    continued = start_run(tmp_path / "continued", data, *run, f"ckpt_path={last}")
    for process in (runs["reference"], resumed, continued):
        assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    assert "exists and is not empty" not in resumed.stderr.read()  # its own checkpoints/: no Lightning warning
    assert json.loads((tmp_path / "killed" / "metrics.json").read_text())["resumed_from_step"] >= saved_step
    assert json.loads((tmp_path / "continued" / "metrics.json").read_text())["resumed_from_step"] == stopped_step
    assert_same_run(tmp_path / "killed", tmp_path / "reference")
    assert_same_run(tmp_path / "continued", tmp_path / "reference", same_curves=False)


@pytest.mark.slow  # the same path as SIGTERM (one handler for both signals); run with -m slow
def test_ctrl_c_finishes_the_call_saves_and_exits_130(names_path, tmp_path):
    run = start_run(tmp_path / "run", f"data.path={names_path}", *RUN)
    wait_for_checkpoint(tmp_path / "run", 250, run)
    _, step = stop_message(run, signal.SIGINT)
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step


def test_ctrl_c_while_starting_is_one_line_and_130(names_path, tmp_path):
    """Ctrl-C between the door and the first step (reading data, building the Trainer) ends the command in one line
    and 130, as it does during training (where the run saves first)."""
    command = [sys.executable, str(REPO / "scripts" / "train.py"), f"data.path={names_path}", *RUN]
    # SIGINT as a terminal gives it: a shell's background job (CI's) starts with SIGINT ignored, which Python keeps
    default_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    run = subprocess.Popen([*command, f"hydra.run.dir={tmp_path / 'run'}"], cwd=REPO, stderr=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, preexec_fn=default_sigint)  # fmt: skip
    assert run.stdout.readline() == "config\n"  # the config tree: past the door, before the data and the Trainer
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last == "makemore: error: interrupted by Ctrl-C" or last.startswith("makemore: error: stopped by SIGINT")


@pytest.mark.slow  # moved out of the default suite (5-minute budget); CI runs it with -m slow
def test_refusals_to_resume(short_run, names_path, tmp_path):
    """A checkpoint of another model, a corrupted or truncated one, a missing one: one line each."""
    last = short_run / "checkpoints" / "last.ckpt"
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    data = f"data.path={names_path}"
    short = ["trainer.max_steps=250", "val_every=100", "log_every=50", "steps_per_call=50"]
    cases = {
        "other model": (
            [data, *short, "hidden=300", f"ckpt_path={last}"],
            "model.hidden: 200 in the checkpoint, 300 now",
        ),
        "truncated": ([data, *short, f"ckpt_path={truncated}"], "truncated or corrupted"),
        "missing": ([data, *short, f"ckpt_path={tmp_path / 'nope.ckpt'}"], "no such file"),
        "not a run dir": ([f"resume={tmp_path}"], "not a run directory"),
    }

    def run(name: str) -> subprocess.CompletedProcess:
        return run_script("train.py", *cases[name][0], f"hydra.run.dir={tmp_path / 'runs' / name}")

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(cases, pool.map(run, cases), strict=True))
    for name, (_, expected) in cases.items():
        result, run_dir = results[name], tmp_path / "runs" / name
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, (name, result.stderr[-2000:])
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and expected in errors[0], (name, result.stderr[-2000:])
        assert not (run_dir / "metrics.json").exists()


@pytest.mark.slow  # the default suite's 5-minute budget (311 s before); CI runs -m slow
def test_ema_run_killed_and_resumed_is_the_uninterrupted_run(names_path, tmp_path):
    """ema=: the average is what validation scores and best.ckpt holds, and a SIGKILL + resume= gives the same
    average, training weights, losses and curves as the uninterrupted run."""
    run = [f"data.path={names_path}", *RUN, "ema=0.99"]
    reference, killed = (start_run(tmp_path / name, *run) for name in ("reference", "killed"))
    saved_step = wait_for_checkpoint(tmp_path / "killed", 750, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert saved_step < 2000 and not (tmp_path / "killed" / "metrics.json").exists()
    resumed = start_run(tmp_path / "killed", f"resume={tmp_path / 'killed'}")
    for process in (reference, resumed):
        assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    assert_same_run(tmp_path / "killed", tmp_path / "reference")

    best = torch.load(tmp_path / "reference" / "checkpoints" / "best.ckpt", weights_only=True)
    averaged, trained = best["state_dict"], best["current_model_state"]  # Lightning's WeightAveraging layout
    assert best["averaging_state"]["n_averaged"] == best["global_step"]  # one update per optimizer step
    assert any(not torch.equal(averaged[k], trained[k]) for k in trained)
    resumed_best = torch.load(tmp_path / "killed" / "checkpoints" / "best.ckpt", weights_only=True)
    assert all(torch.equal(resumed_best["current_model_state"][k], trained[k]) for k in trained)
