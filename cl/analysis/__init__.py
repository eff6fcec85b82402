"""Offline analysis of finished runs: the comparison report and its figures, and the benchmark.
Nothing in the engine imports it."""
