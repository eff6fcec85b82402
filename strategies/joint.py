"""Joint training: at each task, train on the union of all tasks seen so far.

Each example keeps its own task id, so it trains its own head (task-incremental) or its own label
range (class-incremental); evaluation is the same as for every other strategy. Earlier tasks are
trained again at every task (the first one T times), so this is not the upper bound a stream is
measured against: ``multitask`` is.
"""

from datasets import Dataset
from typing_extensions import override

from cl.engine.callback import ContinualCallback
from tasks.stream import union


class Joint(ContinualCallback):
    @override
    def train_data(self, module, task_id: int, stream, data: Dataset) -> Dataset:
        return union([t.train for t in stream.tasks[: task_id + 1]])
