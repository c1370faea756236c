"""Sample items from a trained model: python scripts/sample.py ckpt=outputs/.../checkpoints/best.ckpt [n=20]"""

import sys

import hydra
from omegaconf import DictConfig

from makemore.cli import report_user_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
@report_user_errors
def main(cfg: DictConfig) -> None:
    from makemore.sampling import generate, training_items
    from makemore.training.checkpoint import load_checkpoint

    module, _ = load_checkpoint(cfg.ckpt)
    samples = generate(
        module.model,
        module.vocab,
        cfg.n,
        module.model.block_size,
        max_len=cfg.max_len,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        seed=cfg.seed,
        prefix=cfg.prefix,
    )
    seen = training_items(module) if cfg.mark_new else None
    for item in samples:
        print(item if seen is None or item not in seen else f"{item}  (in training data)")
    if seen is not None:
        new = sum(item not in seen for item in samples)
        print(f"new: {new}/{len(samples)} ({new / len(samples):.0%})", file=sys.stderr)


if __name__ == "__main__":
    main()
