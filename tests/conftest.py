"""Fixtures: a private cache folder and a helper that runs a synthetic stream in-process."""

import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import cl.run  # noqa: F401  (registers the config resolvers)

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


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
