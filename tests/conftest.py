"""Fixtures: a private cache folder and a helper that runs a synthetic stream in-process."""

import logging
import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

import cl.run  # noqa: F401  (registers the config resolvers)

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N: one thread per worker (and per CLI run a test starts), or N workers of torch's
    # default thread count would oversubscribe the cores
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CL_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    logging.getLogger("lightning").setLevel(logging.WARNING)


def make_config(*overrides: str):
    with initialize_config_dir(CONFIGS, version_base="1.3"):
        return compose(
            "config",
            overrides=["experiment=synthetic", "logger=none", "trainer.enable_progress_bar=false", *overrides],
        )


@pytest.fixture
def build_synthetic():
    """Build (but do not run) an experiment on the synthetic stream: module, stream, callbacks."""
    return lambda *overrides: cl.run.build(make_config(*overrides))


@pytest.fixture
def run_synthetic(tmp_path):
    """Run the synthetic stream in-process with extra overrides; returns the RunResults."""

    def _run(*overrides: str, out: Path | None = None):
        return cl.run.run(make_config(*overrides), str(out or tmp_path / "run"))

    return _run
