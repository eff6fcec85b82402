from cl.run import execute


def test_joint_trains_on_every_task_seen_so_far(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=joint", "trainer.max_epochs=2")
    res = execute(exp, str(tmp_path))
    sizes = [len(t.train) for t in exp.stream.tasks]
    assert res.train_examples == [sizes[0], sizes[0] + sizes[1], sum(sizes)]
    assert min(res.accuracy_matrix[-1]) > 0.75, res.accuracy_matrix  # nothing forgotten


def test_joint_joins_tasks_with_different_label_sets(run_synthetic):
    res = run_synthetic("strategy=joint", "trainer.max_epochs=1", "+stream.tasks.t1.source.num_classes=3")
    assert res.status == "finished" and res.train_examples[1] == 64 + 96


def test_joint_joins_classification_and_generative_tasks(run_synthetic):
    res = run_synthetic("experiment=synthetic_instruct", "~stream.tasks.g2", "strategy=joint", "trainer.max_epochs=1")
    assert res.status == "finished" and res.train_examples == [64, 64 + 64]
