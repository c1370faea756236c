"""Train a makemore model: python scripts/train.py [experiment=seed_11897] [hidden=300 emb_dim=10 ...]
Continue an interrupted run with python scripts/train.py resume=<run dir>."""

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from makemore.cli import expand_resume, report_user_errors, run
from makemore.config import validate_config
from makemore.resolvers import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode == RunMode.MULTIRUN:  # a single run was checked before its run dir existed
        validate_config(cfg)  # before importing Lightning: a typo should cost a second, not ten
    from makemore.training.train import train

    return train(cfg)


if __name__ == "__main__":
    sys.argv = expand_resume(sys.argv)
    run(main)
