"""Checkpoints are read without running code, bad ones are one clear line, and a failed write (disk full)
leaves the previous last.ckpt intact."""

import re
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
import torch.serialization

from makemore.errors import MakemoreError
from makemore.training.checkpoint import load_checkpoint

from .conftest import REPO, SHORT_RUN, run_script


class _RunsCode:
    """A pickle that runs a command when unpickled: what a hostile .ckpt would contain."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_real_checkpoint_needs_nothing_beyond_the_allow_list(short_run):
    for name in ("best.ckpt", "last.ckpt"):  # torch's weights-only unpickler, no extra globals allowed: loads
        checkpoint = torch.load(short_run / "checkpoints" / name, weights_only=True)
        assert checkpoint["state_dict"] and checkpoint["hyper_parameters"]["model"]["name"] == "mlp"


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.ckpt"
    torch.save({"hyper_parameters": {}, "state_dict": {}, "payload": _RunsCode(marker)}, hostile)
    with pytest.raises(MakemoreError, match=r"refused to load .* beyond tensors and plain data"):
        load_checkpoint(hostile)
    assert not marker.exists()
    torch.load(hostile, weights_only=False)  # what an unguarded load would have done
    assert marker.exists()


def test_a_truncated_checkpoint_is_one_clear_line(short_run, tmp_path):
    best = short_run / "checkpoints" / "best.ckpt"
    path = tmp_path / "bad.ckpt"
    path.write_bytes(best.read_bytes()[:-1000])
    result = run_script("sample.py", f"ckpt={path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "truncated or corrupted" in errors[0], result.stderr[-2000:]


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "random.ckpt"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(MakemoreError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_a_pytorch_file_that_is_not_a_makemore_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(MakemoreError, match="is a PyTorch file but not a makemore checkpoint"):
        load_checkpoint(path)


# Runs scripts/train.py with file writes of checkpoints failing as on a full disk from the 3rd save on:
# the write is cut short half-way, as the kernel would when the last free block is gone.
DISK_FULL = textwrap.dedent(
    """
    import errno, os, runpy, sys

    saves = 0
    real_fsync = os.fsync

    def fsync(fd):  # the disk fills while the third checkpoint is written
        global saves
        if ".last.ckpt." in os.readlink(f"/proc/self/fd/{fd}"):
            saves += 1
            if saves >= 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    os.fsync = fsync
    sys.argv = [sys.argv[1], *sys.argv[2:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def test_disk_full_while_writing_a_checkpoint(names_path, tmp_path):
    wrapper = tmp_path / "disk_full.py"
    wrapper.write_text(DISK_FULL)
    run_dir = tmp_path / "run"
    args = ["trainer.max_steps=1000", "val_every=500", "ckpt_every=100", "log_every=50", "steps_per_call=50"]
    result = subprocess.run(
        [
            sys.executable,
            str(wrapper),
            str(REPO / "scripts" / "train.py"),
            f"data.path={names_path}",
            *args,
            f"hydra.run.dir={run_dir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "could not write checkpoint" in errors[0] and "No space left on device" in errors[0]
    assert f"resume={run_dir}" in errors[0]
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]  # no half-written temp file
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 200  # the 2nd save, intact
    assert not (run_dir / "metrics.json").exists()


def crafted(short_run, path, edit) -> None:
    """A copy of the short run's best.ckpt whose stored config `edit` changed: what an attacker can write."""
    ckpt = torch.load(short_run / "checkpoints" / "best.ckpt", weights_only=True)
    edit(ckpt["hyper_parameters"])
    torch.save(ckpt, path)


def touch_config(marker):
    """Hydra's instantiate would call Path(marker).touch(): a config that runs code, made of plain values."""
    return {"_target_": "pathlib.Path.touch", "_args_": [{"_target_": "pathlib.Path", "_args_": [str(marker)]}]}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nested target", "config.model.init_seed._target_ names code to run"),
        ("top-level target", "config._target_ names code to run"),
        ("scheduler target", "config.scheduler._target_ names code to run"),
        ("unknown model key", "model.evil is not a setting of the mlp model"),
        ("unknown model name", "model.name='os.system' is not a makemore model"),
        ("unknown top-level key", "config.hook is not a setting of a makemore checkpoint"),
        ("unknown data key", "data.exec is not a setting of the data record"),
        ("not a plain value", "config.optimizer.lr holds a Tensor, not a plain value"),
    ],
)
def test_a_checkpoint_config_naming_code_or_unknown_keys_is_refused_in_process(short_run, tmp_path, name, message):
    marker = tmp_path / "touched"
    edits = {
        "nested target": lambda h: h["model"].update(init_seed=touch_config(marker)),
        "top-level target": lambda h: h.update(_target_="pathlib.Path.touch"),
        "scheduler target": lambda h: h.update(scheduler=touch_config(marker)),
        "unknown model key": lambda h: h["model"].update(evil=1),
        "unknown model name": lambda h: h["model"].update(name="os.system"),
        "unknown top-level key": lambda h: h.update(hook="x"),
        "unknown data key": lambda h: h["data"].update(exec="x"),
        "not a plain value": lambda h: h["optimizer"].update(lr=torch.tensor(0.1)),
    }
    path = tmp_path / "crafted.ckpt"
    crafted(short_run, path, edits[name])
    with pytest.raises(MakemoreError, match=f"refused to load .*{re.escape(message)}"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.slow  # moved out of the default suite (5-minute budget); CI runs it with -m slow
def test_every_command_refuses_a_crafted_checkpoint_in_one_line_without_running_it(short_run, names_path, tmp_path):
    """sample.py, eval.py, resume= and ckpt_path= all read checkpoints through the same check."""
    marker = tmp_path / "touched"
    bad = tmp_path / "crafted.ckpt"
    crafted(short_run, bad, lambda h: h["model"].update(init_seed=touch_config(marker)))
    run_copy = tmp_path / "run copy"
    shutil.copytree(short_run, run_copy)
    shutil.copy(bad, run_copy / "checkpoints" / "last.ckpt")
    (run_copy / "metrics.json").unlink()
    data = f"data.path={names_path}"
    commands = {
        "sample": ("sample.py", [f"ckpt={bad}"]),
        "eval": ("eval.py", [f"ckpt={bad}"]),
        "resume": ("train.py", [f"resume={run_copy}"]),
        "ckpt_path": ("train.py", [data, *SHORT_RUN, f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'new'}"]),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(commands, pool.map(lambda c: run_script(c[0], *c[1]), commands.values()), strict=True))
    for name, result in results.items():
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr[-2000:])
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1, (name, result.stderr[-2000:])
        assert "config.model.init_seed._target_ names code to run" in errors[0], (name, errors[0])
        assert result.stdout.strip() == "" or name in ("resume", "ckpt_path"), (name, result.stdout)  # no samples
    assert not marker.exists()
    assert not (run_copy / "metrics.json").exists()
