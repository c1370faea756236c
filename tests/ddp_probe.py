"""A callback the DDP tests add with `+callbacks.dump._target_=tests.ddp_probe.DumpWeights`: every process
saves its own weights (buffers included) at the end of training, so the test can compare all of them."""

from pathlib import Path

import lightning as L
import torch


class DumpWeights(L.Callback):
    def __init__(self, out: str):
        self.out = Path(out)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()}
        torch.save(state, self.out / f"rank{trainer.global_rank}.pt")
