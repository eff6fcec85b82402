from cl.run import execute


def test_multitask_trains_once_on_every_task(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=multitask", "trainer.max_epochs=4")
    res = execute(exp, str(tmp_path))
    assert res.train_examples == [sum(len(t.train) for t in exp.stream.tasks), 0, 0]
    assert res.accuracy_matrix[0] == res.accuracy_matrix[1] == res.accuracy_matrix[2]  # one model
    assert min(res.accuracy_matrix[0]) > 0.75, res.accuracy_matrix  # every task learnt
    assert res.train_seconds[1] == 0 and res.eval_seconds[1] == 0  # nothing trained, nothing re-scored
