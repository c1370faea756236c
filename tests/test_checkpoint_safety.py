"""Checkpoints are read without running code, bad ones are one clear line, and a failed write (disk full)
leaves the previous last.ckpt intact."""

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.serialization

from makemore.errors import MakemoreError
from makemore.training.checkpoint import load_checkpoint

from .conftest import REPO, run_script


class _RunsCode:
    """A pickle that runs a command when unpickled: what a hostile .ckpt would contain."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_real_checkpoint_needs_nothing_beyond_the_allow_list(short_run):
    for name in ("best.ckpt", "last.ckpt"):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(short_run / "checkpoints" / name) == []


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
    from fsspec.implementations.local import LocalFileOpener

    saves = 0
    real_commit = LocalFileOpener.commit

    def write(self, data):
        global saves
        if saves >= 2:
            self.f.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(data)

    def commit(self):
        global saves
        saves += 1
        return real_commit(self)

    LocalFileOpener.write = write
    LocalFileOpener.commit = commit
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
