"""The engine: building a run from its config, the task loop, the callback contract strategies
implement, the LightningModule base, checkpoints, results, metrics, loggers and settings checks."""
