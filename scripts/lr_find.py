"""Find the learning rate as the notebook does: python scripts/lr_find.py [lr_find.apply=true] [any train.py override]
Writes lr_find.png (loss against log10(lr)) and lr_find.json into the run dir and reports the suggested lr; with
lr_find.apply=true it goes on to train with it in the same run dir."""

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from makemore.cli import report_user_errors, run
from makemore.config import validate_config
from makemore.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> float | None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:  # a single run was checked before its run dir existed
        validate_config(cfg)
    from makemore.lr_find import find_lr
    from makemore.training.train import train

    suggestion = find_lr(cfg)
    if cfg.lr_find.apply and suggestion is not None:
        cfg.optimizer.lr = suggestion
        return train(cfg)
    return None


if __name__ == "__main__":
    run(main)
