from cl.engine.build import build_callbacks
from tests.conftest import make_config


def test_naive_is_configuration_alone_and_trains_everything(build_synthetic):
    assert build_callbacks(make_config("strategy=naive").strategy) == []
    exp = build_synthetic("strategy=naive")
    assert all(p.requires_grad for p in exp.module.parameters())
