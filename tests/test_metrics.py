import math

import pytest

from cl.engine.metrics import METRIC_NAMES, all_metrics, backward_transfer, forgetting, forward_transfer

# Three tasks, worked out by hand.
R = [
    [0.9, 0.2, 0.1],
    [0.6, 0.8, 0.3],
    [0.5, 0.7, 0.95],
]
B = [0.1, 0.25, 0.2]


def test_metrics_on_a_hand_computed_matrix():
    m = all_metrics(R, B)
    assert set(m) == set(METRIC_NAMES)
    assert m["acc"] == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert m["avg_incremental_acc"] == pytest.approx((0.9 + (0.6 + 0.8) / 2 + (0.5 + 0.7 + 0.95) / 3) / 3)
    assert m["bwt"] == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert m["fwt"] == pytest.approx(((0.2 - 0.25) + (0.3 - 0.2)) / 2)
    assert m["forgetting"] == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)
    assert m["learning_acc"] == pytest.approx((0.9 + 0.8 + 0.95) / 3)


def test_forgetting_uses_the_best_earlier_accuracy_not_the_diagonal():
    # Task 0 improves after task 1 (0.5 -> 0.9), then drops to 0.4: forgetting counts from the peak
    # 0.9, while BWT compares with the diagonal 0.5.
    r = [[0.5, 0.0, 0.0], [0.9, 0.8, 0.0], [0.4, 0.8, 0.7]]
    assert forgetting(r) == pytest.approx(((0.9 - 0.4) + (0.8 - 0.8)) / 2)
    assert backward_transfer(r) == pytest.approx(((0.4 - 0.5) + (0.8 - 0.8)) / 2)


def test_no_forgetting_and_positive_backward_transfer():
    r = [[0.6, 0.1], [0.7, 0.9]]
    assert backward_transfer(r) == pytest.approx(0.1)
    assert forgetting(r) == pytest.approx(-0.1)


def test_single_task_leaves_transfer_undefined():
    m = all_metrics([[0.8]], [0.5])
    assert m["acc"] == m["learning_acc"] == m["avg_incremental_acc"] == 0.8
    assert all(math.isnan(m[k]) for k in ("bwt", "fwt", "forgetting"))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="square"):
        all_metrics([[0.1, 0.2]], [0.1, 0.2])
    with pytest.raises(ValueError, match="initial"):
        forward_transfer(R, [0.1])
