"""Joint training, the upper bound: at each task, train on the union of all tasks seen so far.

Each example keeps its own task id, so it trains its own head (task-incremental) or its own label
range (class-incremental); evaluation is the same as for every other strategy.
"""

from datasets import Dataset
from typing_extensions import override

from cl.callback import ContinualCallback


class Joint(ContinualCallback):
    @override
    def train_data(self, module, task_id: int, stream, data: Dataset) -> Dataset:
        return stream.union_train(task_id)
