"""Evaluate a trained model on its train/val/test splits: python scripts/eval.py ckpt=<run dir or .ckpt>"""

import hydra
from omegaconf import DictConfig

from makemore.cli import report_user_errors, run
from makemore.config import check_eval_options


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@report_user_errors
def main(cfg: DictConfig) -> None:
    from pathlib import Path

    from makemore.evaluation import evaluate
    from makemore.io import atomic_write_json
    from makemore.training.checkpoint import load_checkpoint, resolve_checkpoint

    check_eval_options(cfg)
    ckpt_path = resolve_checkpoint(cfg.ckpt)
    module, ckpt = load_checkpoint(ckpt_path)
    results = {
        "ckpt": str(ckpt_path),
        "step": ckpt["global_step"],
        **evaluate(module.model, module.vocab, module.hparams.data, cfg.data.path, cfg.eval_batch_size),
    }
    out = Path(cfg.out) if cfg.out else ckpt_path.parent.parent / "eval.json"
    atomic_write_json(out, results)
    print(f"{'split':<6} {'loss':>8} {'bits/char':>10} {'perplexity':>11} {'targets':>9}")
    for split in ("train", "val", "test"):
        r = results[split]
        print(f"{split:<6} {r['loss']:8.4f} {r['bits_per_char']:10.4f} {r['perplexity']:11.3f} {r['targets']:9d}")
    print(f"written: {out}")


if __name__ == "__main__":
    run(main)
