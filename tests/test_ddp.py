"""Data-parallel training on two CPU processes (gloo), checked by the properties a user relies on: the
processes end with the same weights, two processes of batch B learn like one of batch 2B, validation
scores each target once, and SIGTERM stops every process after one save."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from makemore.data.datamodule import CharDataModule
from makemore.evaluation import mean_nll
from makemore.training.checkpoint import load_checkpoint

from .conftest import REPO, run_script, tensorboard_dir

pytestmark = pytest.mark.slow  # each test starts two training processes; run with -m slow (CI does)

DDP = ["trainer=ddp", "trainer.devices=2"]
PROBE = {"PYTHONPATH": str(REPO)}  # so the processes can import tests.ddp_probe


def val_curve(run_dir) -> dict[int, float]:
    events = EventAccumulator(str(tensorboard_dir(run_dir)))
    events.Reload()
    return {e.step: e.value for e in events.Scalars("val_loss")}


# a context model, a sequence model (windows), and hand-derived gradients (averaged without DDP's autograd hooks)
@pytest.mark.parametrize("model", ["model=mlp", "model=gru", "model=mlp_batchnorm model.backward=manual"])
def test_every_process_ends_with_the_same_weights_and_validation_covers_the_whole_split(names_path, tmp_path, model):
    run_dir = tmp_path / "ddp"
    result = run_script(
        "train.py",
        *DDP,
        *model.split(),
        f"data.path={names_path}",
        "trainer.max_steps=300",
        "val_every=100",
        f"hydra.run.dir={run_dir}",
        "+callbacks.dump._target_=tests.ddp_probe.DumpWeights",
        f"+callbacks.dump.out={tmp_path}",
        env=PROBE,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert max((rank0[k] - rank1[k]).abs().max().item() for k in rank0) == 0.0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 300
    # The val loss logged during training (each process scored half the split, the sums were added) is the
    # whole split's: recomputed in one process from best.ckpt it is the same number.
    module, ckpt = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")
    dm = CharDataModule(str(names_path), {}, module.model.block_size, batch_size=32, view=module.model.view)
    dm.setup()
    whole_split = mean_nll(module.model, dm.examples["val"])
    # (on Lightning's step axis: the validation after step N is logged at N - 1)
    assert val_curve(run_dir)[ckpt["global_step"] - 1] == pytest.approx(whole_split, abs=1e-5)
    assert metrics["val_loss"] == pytest.approx(whole_split, abs=1e-9)
    assert len(list(tensorboard_dir(run_dir).glob("events.out.tfevents.*.0"))) == 1  # rank zero alone logs


def test_two_processes_of_batch_b_learn_like_one_of_batch_2b(names_path, tmp_path):
    common = [f"data.path={names_path}", "trainer.max_steps=2000", "val_every=500"]
    ddp = run_script("train.py", *DDP, *common, "batch_size=32", f"hydra.run.dir={tmp_path / 'ddp'}")
    one = run_script("train.py", *common, "batch_size=64", f"hydra.run.dir={tmp_path / 'one'}")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = val_curve(tmp_path / "ddp"), val_curve(tmp_path / "one")
    assert a.keys() == b.keys() == {499, 999, 1499, 1999}  # Lightning's step axis
    assert all(abs(a[s] - b[s]) < 0.03 for s in a), (a, b)  # the same curve within minibatch noise
    assert a[1999] < a[499] - 0.1  # and it is a learning curve


def test_sigterm_stops_every_process_after_one_save(names_path, tmp_path):
    run_dir = tmp_path / "termed"
    args = [*DDP, f"data.path={names_path}", "trainer.max_steps=200000", "ckpt_every=1000", "val_every=100000"]
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "train.py"), *args, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.exists():  # both processes are training
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()[-3000:]
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)  # to the first process only, as a scheduler's kill of the job step may
    stderr = process.communicate(timeout=120)[1]  # no hang: every process stops
    assert process.returncode == 143, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if "makemore: error" in line]
    assert len(errors) == 1 and "stopped by SIGTERM" in errors[0], stderr[-3000:]  # said once, not per process
    step = torch.load(last, weights_only=True)["global_step"]
    assert f"at step {step} of 200000" in errors[0]
    assert not list(last.parent.glob("*.tmp"))
    leftover = subprocess.run(["pgrep", "-f", f"hydra.run.dir={run_dir}"], capture_output=True, text=True)
    assert leftover.stdout == "", "a training process is still running"
