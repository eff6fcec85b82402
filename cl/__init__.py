"""The continual-learning framework: ``run`` (the Hydra entry point), ``engine`` (task loop, module
base, callback contract, checkpoints, results, metrics), ``models`` (the model families) and
``analysis`` (report, figures, benchmark; offline, imported by nothing in the engine)."""
