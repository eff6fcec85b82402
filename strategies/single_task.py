"""Single-task fine-tuning, a reference point: every task is trained alone from the pretrained model.

Before each task the whole model (backbone and heads) goes back to the weights it had when the run
started, so row i of the matrix is a model that saw task i only and ``R[i][i]`` is the accuracy a_k*
that Chaudhry et al. (2018, "Riemannian Walk for Incremental Learning") measure forward transfer and
intransigence against (``cl.analysis.report``: ``I_k = a_k* - R[k][k]`` of a continual run).
"""

import torch
from typing_extensions import override

from cl.engine.callback import ContinualCallback


class SingleTask(ContinualCallback):
    def __init__(self):
        self.start: dict[str, torch.Tensor] = {}

    @override
    def on_run_start(self, module, stream, completed_tasks) -> None:
        # The module is built afresh (pretrained backbone, seeded heads) before a resume loads its
        # checkpoint, so this is the run's starting point on a resume too: nothing to store.
        self.start = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @override
    def on_task_start(self, module, task_id, stream, data) -> None:
        module.load_state_dict(self.start)
