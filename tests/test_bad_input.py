"""Every bad input: one clear line on stderr, a non-zero exit, no traceback, no half-written outputs."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from makemore.data.text import read_text_file
from makemore.errors import DataError

from .conftest import run_script

FAST = ["trainer.max_steps=10", "val_every=10", "log_every=10", "steps_per_call=10"]


def bad_files(tmp_path):
    files = {
        "empty": b"",
        "blank": b"\n   \n\t\n",
        "latin1": b"ren\xe9e\nchlo\xe9\n",
        "three_lines": b"ann\nbob\ncid\n",
        "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        "nul": b"ann\nb\x00b\ncid\n" * 10,
    }
    paths = {}
    (tmp_path / "bad files").mkdir()  # a space in the path, on purpose
    for name, content in files.items():
        paths[name] = tmp_path / "bad files" / f"{name}.txt"
        paths[name].write_bytes(content)
    return paths


def cases(tmp_path, names_path):
    files = bad_files(tmp_path)
    data = f"data.path={names_path}"
    return {
        "missing file": ([f"data.path={tmp_path / 'nope.txt'}"], "data file not found"),
        "not utf-8": ([f"data.path={files['latin1']}"], "not UTF-8"),
        "too few items": ([f"data.path={files['three_lines']}"], "too few to split"),
        "binary file": ([f"data.path={files['png']}"], "looks binary (it contains NUL bytes"),
        "block_size 0": ([data, "block_size=0"], "block_size must be a positive integer"),
        "emb_dim 0": ([data, "emb_dim=0"], "emb_dim must be a positive integer"),
        "hidden negative": ([data, "hidden=-5"], "hidden must be a positive integer"),
        "batch_size 0": ([data, "batch_size=0"], "batch_size must be a positive integer"),
        "unknown model": ([data, "model=transformr"], "Could not find 'model/transformr'"),
    }


@pytest.mark.slow  # moved out of the default suite (5-minute budget); CI runs it with -m slow
def test_bad_inputs_fail_clearly(tmp_path, names_path):
    todo = cases(tmp_path, names_path)

    def run(name):
        args, _ = todo[name]
        return name, run_script("train.py", *args, *FAST, f"hydra.run.dir={tmp_path / 'runs' / name}")

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(pool.map(run, todo))
    for name, (_, message) in todo.items():
        result = results[name]
        assert result.returncode != 0, name
        assert "Traceback" not in result.stderr, (name, result.stderr)
        assert message in result.stderr, (name, result.stderr)
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert errors == [next(line for line in errors if message in line)], (name, result.stderr)
        assert not (tmp_path / "runs" / name / "metrics.json").exists()
        assert not (tmp_path / "runs" / name / "checkpoints").exists()
    assert (tmp_path / "runs").is_dir()  # a hydra.run.dir's parent stays (it may be the user's own folder)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.name=nope", "model.name='nope' is not a makemore model; choose one of: "),
        ("+model.hiddn=3", "model.hiddn is not a setting of the mlp model"),
        ("optimizer.momentm=0.9", "unknown key 'optimizer.momentm'"),
        ("grad_clip=-1", "grad_clip must be a positive number"),
        ("trainer.precision=16-mixed", "trainer.precision=16-mixed is not supported: use 32-true or bf16-mixed"),
        ("data.split=[0.5,0.2,0.2]", "data.split must be three positive fractions"),
        ("hidden=0", "hidden must be a positive integer"),
        ("ckpt_every=0", "ckpt_every must be a positive integer"),
        ("ckpt_path=/no/such.ckpt", "ckpt_path=/no/such.ckpt: no such file"),
        ("resume=/no/such/run", "resume=/no/such/run: not a run directory"),
        ("hiden=300", "unknown key 'hiden'"),  # Hydra's struct mode: unknown keys are refused, in one line
    ],
)
def test_config_errors_name_the_key_before_any_dir_is_written(names_path, tmp_path, override, message):
    run_dir = tmp_path / "run"
    result = run_script("train.py", f"data.path={names_path}", *FAST, override, f"hydra.run.dir={run_dir}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [next(line for line in result.stderr.splitlines() if message in line)]
    assert not run_dir.exists()


def read_only_dir(tmp_path):
    """A directory this process cannot create anything in. Root ignores permission bits, so as root
    use /sys, which the kernel keeps read-only for everyone in a container."""
    if os.geteuid() != 0:
        path = tmp_path / "read-only"
        path.mkdir()
        path.chmod(0o555)
        return path
    try:
        os.mkdir("/sys/makemore-probe")
    except OSError:
        return Path("/sys")
    os.rmdir("/sys/makemore-probe")
    pytest.fail("no read-only directory to test with: /sys is writable here")


def test_read_only_output_dir_is_one_clear_error(names_path, tmp_path):
    run_dir = read_only_dir(tmp_path) / "run"
    result = run_script("train.py", f"data.path={names_path}", *FAST, f"hydra.run.dir={run_dir}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and f"cannot create the output directory {run_dir}" in errors[0], result.stderr


def test_divergence_stops_with_a_clear_message_keeps_the_last_good_checkpoint_and_no_results(names_path, tmp_path):
    """The lr jumps from 0.1 to 1000 at step 500 (right after the step-500 validation and checkpoint)."""
    result = run_script(
        "train.py",
        f"data.path={names_path}",
        "scheduler.gamma=10000",
        "trainer.max_steps=1000",
        "val_every=500",
        "log_every=100",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "training diverged" in result.stderr and "lower optimizer.lr" in result.stderr
    assert "steps 501-600" in result.stderr  # stopped at the first log point after the blow-up
    assert not (tmp_path / "metrics.json").exists()
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 500
    assert all(torch.isfinite(w).all() for w in last["state_dict"].values())


@pytest.mark.parametrize(
    ("name", "message"),
    [("directory", "is a directory"), ("empty", "no items"), ("blank", "no items"), ("nul", "looks binary")],
)
def test_more_unusable_files_are_refused_in_process(tmp_path, name, message):
    """The same DataError the CLI prints as one line (tested above), for the rest of the bad files."""
    path = tmp_path if name == "directory" else bad_files(tmp_path)[name]
    with pytest.raises(DataError, match=message):
        read_text_file(path)
