"""Sample items from a trained model: python scripts/sample.py ckpt=<run dir or .ckpt> [n=20 temperature=1.0 ...]
An ensemble: ckpt='[RUN_A,RUN_B,...]' samples from the mean of the members' next-character probabilities."""

import sys

import hydra
from omegaconf import DictConfig

from makemore.cli import report_user_errors, run
from makemore.config import check_sample_options
from makemore.threads import set_threads


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
@report_user_errors
def main(cfg: DictConfig) -> None:
    from makemore.errors import MakemoreError
    from makemore.sampling import generate, training_items
    from makemore.training.checkpoint import load_members

    check_sample_options(cfg)
    set_threads(cfg.threads)
    _, modules, _ = load_members(cfg.ckpt)  # a path, or a list of them: an ensemble, of one vocabulary and data
    options = {k: cfg[k] for k in ("max_len", "temperature", "top_k", "seed")}
    samples = generate([m.model for m in modules], modules[0].vocab, cfg.n, prefix=str(cfg.prefix), **options)
    seen = None
    if cfg.mark_new:
        try:
            seen = training_items(modules[0].hparams.data)
        except MakemoreError as e:
            print(f"makemore: note: items are not marked new or seen in training, because {e}", file=sys.stderr)
    for item in samples:
        print(item if seen is None or item not in seen else f"{item}  (in training data)")
    if seen is not None:
        new = sum(item not in seen for item in samples)
        print(f"new: {new}/{len(samples)} ({new / len(samples):.0%})", file=sys.stderr)


if __name__ == "__main__":
    run(main)
