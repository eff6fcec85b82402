from cl.run import execute


def test_batches_have_replays_shape_with_current_task_examples_only(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=step_matched", "trainer.max_epochs=1")
    shapes, original = [], exp.module.training_step

    def record(batch, batch_idx):
        extended = exp.module.cl_callbacks[0].extend_batch(exp.module, batch)
        assert (extended["rows"] >= 0).all()  # the extra examples are rows of the current task's data
        shapes.append((len(batch["labels"]), len(extended["labels"]), set(extended["task_ids"].tolist())))
        return original(batch, batch_idx)

    exp.module.training_step = record
    res = execute(exp, str(tmp_path))
    full = [(n, m) for n, m, _ in shapes if n == 16]
    assert full and all(m == 24 for _, m in full)  # 16 + 0.5 x 16, as replay's batches
    assert all(len(ids) == 1 for _, _, ids in shapes)  # one task per batch: the current one
    assert res.train_examples == [len(t.train) for t in exp.stream.tasks]
