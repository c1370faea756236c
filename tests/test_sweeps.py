"""Multiruns through the real launchers and sweepers: summaries, failures, Optuna, joblib, submitit."""

import optuna
import pytest

from .conftest import run_script, summary_rows

TINY = ["trainer.max_steps=100", "val_every=100", "log_every=100", "steps_per_call=50", "hidden=16"]


@pytest.mark.slow  # two training processes side by side; run with -m slow
def test_joblib_grid_writes_a_sorted_summary(names_path, tmp_path):
    sweep = tmp_path / "grid"
    result = run_script(
        "train.py",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"data.path={names_path}",
        *TINY,
        "emb_dim=2,8",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows(sweep)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    losses = [float(r["val_loss"]) for r in rows]
    assert losses == sorted(losses)
    assert {r["overrides"] for r in rows} == {"emb_dim=2", "emb_dim=8"}
    assert "| job | status | overrides |" in (sweep / "summary.md").read_text()
    assert "emb_dim=" in result.stdout + result.stderr  # the table is printed at the end


def test_a_failed_job_is_a_failed_row_and_the_others_finish(names_path, tmp_path):
    sweep = tmp_path / "with_failure"
    missing = tmp_path / "missing.txt"
    result = run_script("train.py", "-m", f"data.path={names_path},{missing}", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode != 0  # the sweep reports that a job failed ...
    rows = summary_rows(sweep)
    assert [r["status"] for r in rows] == ["ok", "failed"]  # ... after the other job ran
    assert "data file not found" in rows[1]["error"]


@pytest.mark.slow  # each launches several training processes; run with -m slow
def test_optuna_search_runs_and_reports_its_best(names_path, tmp_path):
    sweep = tmp_path / "optuna"
    storage = tmp_path / "study.db"
    args = [
        "hparams_search=mlp_optuna",
        "hydra.sweeper.n_trials=3",
        f"hydra.sweeper.storage=sqlite:///{storage}",
        f"data.path={names_path}",
        *TINY,
        f"hydra.sweep.dir={sweep}",
    ]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    best = (sweep / "optimization_results.yaml").read_text()
    assert "best_value" in best and "best_params" in best
    trials = len(optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{storage}").trials)
    assert trials >= 2 and len(summary_rows(sweep)) == trials  # one job per trial
    resumed = run_script("train.py", *args[:-1], f"hydra.sweep.dir={tmp_path / 'optuna2'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{storage}")
    assert len(study.trials) == 2 * trials  # the second search continued the first


@pytest.mark.slow  # each launches several training processes; run with -m slow
def test_submitit_local_launcher(names_path, tmp_path):
    sweep = tmp_path / "submitit"
    result = run_script(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        f"data.path={names_path}",
        *TINY,
        "emb_dim=2,4",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["status"] for r in summary_rows(sweep)] == ["ok", "ok"]
