import torch

from cl.run import execute


def test_every_task_starts_from_the_pretrained_weights(build_synthetic, tmp_path):
    exp = build_synthetic("strategy=single_task", "trainer.max_epochs=3")
    start = {k: v.clone() for k, v in exp.module.state_dict().items()}
    seen = []
    original = exp.module.training_step

    def first_step_weights(batch, batch_idx):
        if exp.module.global_step == 0 and batch_idx == 0:  # the first step of each task
            seen.append({k: v.clone() for k, v in exp.module.state_dict().items()})
        return original(batch, batch_idx)

    exp.module.training_step = first_step_weights
    res = execute(exp, str(tmp_path))
    assert len(seen) == 3
    assert all(torch.equal(s[k], start[k]) for s in seen for k in start)  # tasks 1 and 2 too
    assert res.accuracy_matrix[2][0] < res.accuracy_matrix[0][0]  # task 0 not kept: only task 2 trained
