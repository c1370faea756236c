"""Training: the LightningModule, its callbacks, checkpoints and the train task."""
