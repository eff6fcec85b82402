"""Multitask training, the non-sequential upper bound: one model trained on every task at once.

At the first task it trains on the union of all the stream's tasks (each example through its own
head, or its own label range when class-incremental), for the same epochs each example would get in
the stream; the later tasks have nothing to train, so the loop carries the scores over. Every row of
the matrix is that one model. Unlike ``joint``, which re-trains earlier tasks at every task (up to
T epochs' worth for the first), every example is seen equally often.
"""

from datasets import Dataset
from typing_extensions import override

from cl.engine.callback import ContinualCallback
from tasks.stream import union


class Multitask(ContinualCallback):
    @override
    def train_data(self, module, task_id: int, stream, data: Dataset) -> Dataset:
        return union([t.train for t in stream.tasks]) if task_id == 0 else data.select([])
