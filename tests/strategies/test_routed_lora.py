import pytest
import torch

from cl.engine.routing import Router
from cl.run import execute

LEARNABLE = ("model.pooling=mean", "trainer.max_epochs=6", "strategy.routed_lora.lr=null")  # as in test_lora


@pytest.mark.parametrize("kind", ["prototype", "mahalanobis"])
def test_the_router_sends_inputs_to_the_task_of_the_nearest_class(kind):
    g = torch.Generator().manual_seed(0)
    # two tasks of two classes each, clusters apart along different directions, one noisy dimension
    centres = torch.tensor([[4.0, 0, 0], [0, 4.0, 0], [-4.0, 0, 0], [0, -4.0, 0]])
    scale = torch.tensor([0.5, 0.5, 5.0])
    router = Router(kind)
    for task in (0, 1):
        labels = torch.arange(2).repeat_interleave(50)
        x = centres[2 * task + labels] + torch.randn(100, 3, generator=g) * scale
        router.add_task(task, x, labels)
    test = torch.arange(4).repeat_interleave(25)
    x = centres[test] + torch.randn(100, 3, generator=g) * scale
    assert (router.route(x) == test // 2).float().mean() >= 0.95
    again = Router(kind)
    again.load_state_dict(router.state_dict())
    assert torch.equal(again.route(x), router.route(x))  # a resumed run routes the same


def test_routing_with_a_perfect_router_scores_like_the_task_id(build_synthetic, tmp_path):
    # Class-incremental, routed: if every input is routed to its own task, the matrix must equal
    # what the true task's adapter gives (the report's oracle accuracy) and routing is 1.0.
    exp = build_synthetic("strategy=routed_lora", "stream.scenario=class", *LEARNABLE)
    routed = exp.module.cl_callbacks[0]
    routed.router.route = lambda features: current["task_ids"].clamp(max=routed.latest)  # seen tasks only
    current = {}
    original = routed.predict_proba

    def remember(module, batch, head):
        current["task_ids"] = batch["task_ids"]
        return original(module, batch, head)

    routed.predict_proba = remember
    res = execute(exp, str(tmp_path))
    last = res.strategy_report[-1]
    assert last["routing_acc"] == 1.0
    assert sum(res.accuracy_matrix[-1]) / 3 == pytest.approx(last["oracle_acc"], abs=1e-6)
    r = res.accuracy_matrix
    assert r[0][0] > 0.65 and r[0][0] == r[1][0] == r[2][0], r  # learnt, and never forgotten


def test_routed_lora_runs_class_incremental_and_reports_routing(run_synthetic):
    res = run_synthetic("strategy=routed_lora", "stream.scenario=class", "trainer.max_epochs=2")
    report = res.strategy_report[-1]
    assert res.status == "finished" and 0 <= report["routing_acc"] <= 1 and 0 <= report["oracle_acc"] <= 1
    assert report["adapters"] == 3


def test_routing_needs_the_class_incremental_scenario(run_synthetic):
    with pytest.raises(ValueError, match="stream.scenario=class"):
        run_synthetic("strategy=routed_lora")
    with pytest.raises(ValueError, match="lora.mode=isolation"):
        run_synthetic("strategy=routed_lora", "stream.scenario=class", "strategy.routed_lora.mode=shared")


def test_routed_lora_runs_on_a_language_model(run_synthetic):
    res = run_synthetic("experiment=synthetic_lm", "strategy=routed_lora", "stream.scenario=class",
                        "trainer.max_epochs=1", "~stream.tasks.t2")  # fmt: skip
    assert res.status == "finished" and 0 <= res.strategy_report[-1]["routing_acc"] <= 1
