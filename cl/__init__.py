"""The continual-learning engine: task loop, LightningModule, callback contract, metrics, results."""
