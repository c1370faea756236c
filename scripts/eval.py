"""Evaluate a trained model on its train/val/test splits: python scripts/eval.py ckpt=<run dir or .ckpt>
An ensemble: ckpt='[RUN_A,RUN_B,...]' scores each member and the mean of their next-character probabilities."""

from datetime import datetime
from pathlib import Path

import hydra
from omegaconf import DictConfig

from makemore.cli import report_user_errors, run
from makemore.config import check_eval_options
from makemore.threads import set_threads

SPLITS = ("train", "val", "test")


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@report_user_errors
def main(cfg: DictConfig) -> None:
    from makemore.evaluation import evaluate
    from makemore.io import atomic_write_json
    from makemore.training.checkpoint import load_members

    check_eval_options(cfg)
    set_threads(cfg.threads)
    paths, modules, ckpts = load_members(cfg.ckpt)  # a path, or a list of them: an ensemble
    scores = evaluate(modules, cfg.data.path, cfg.eval_batch_size)
    if isinstance(cfg.ckpt, str):
        scores = {"data": scores["data"], **scores["members"][0]}  # the one member's, as eval.json holds them
        print(f"{'split':<6} {'loss':>8} {'bits/char':>10} {'perplexity':>11} {'targets':>9}")
        for split in SPLITS:
            r = scores[split]
            print(f"{split:<6} {r['loss']:8.4f} {r['bits_per_char']:10.4f} {r['perplexity']:11.3f} {r['targets']:9d}")
        out = Path(cfg.out) if cfg.out else paths[0].parent.parent / "eval.json"
        results = {"ckpt": str(paths[0]), "step": ckpts[0]["global_step"], **scores}
    else:
        out = Path(cfg.out or f"outputs/ensembles/{datetime.now():%Y-%m-%d_%H-%M-%S}/eval.json")
        results = ensemble(paths, modules, ckpts, scores)
    atomic_write_json(out, results)
    print(f"written: {out}")


def ensemble(paths: list[Path], modules: list, ckpts: list[dict], scores: dict) -> dict:
    """Members and ensemble in one table; eval.json also holds the row compare.py shows for the ensemble."""
    from makemore.evaluation import ensemble_row
    from makemore.tables import markdown_table

    members = [
        {"ckpt": str(p), "model": m.hparams.model["name"], "step": c["global_step"], "num_params": m.num_params, **s}
        for p, m, c, s in zip(paths, modules, ckpts, scores["members"], strict=True)
    ]
    row = ensemble_row(members, scores["ensemble"], modules[0].hparams.data)
    table = [(str(i + 1), m["model"], m["ckpt"], m["num_params"], m) for i, m in enumerate(members)]
    table.append(("", row["name"], "", row["num_params"], scores["ensemble"]))
    cells = [[*r[:3], f"{r[3]:,}", *(f"{r[4][s]['loss']:.4f}" for s in SPLITS)] for r in table]
    sizes = " / ".join(f"{n:,} {split}" for split, n in row["split_sizes"].items())
    print(f"loss (nats/char) over the same targets of {scores['data']} ({sizes} targets)\n")
    print(markdown_table(["member", "model", "checkpoint", "parameters", *SPLITS], cells), end="")
    return {**row, "members": members, "ensemble": scores["ensemble"], "data_file": scores["data"]}


if __name__ == "__main__":
    run(main)
