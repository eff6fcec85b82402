"""Joint training, the upper bound: at each task, train on the union of all tasks seen so far.

Each example keeps its own task id, so it trains its own head (task-incremental) or its own label
range (class-incremental); evaluation is the same as for every other strategy.
"""

from datasets import Dataset, Value, concatenate_datasets
from typing_extensions import override

from cl.engine.callback import ContinualCallback


class Joint(ContinualCallback):
    @override
    def train_data(self, module, task_id: int, stream, data: Dataset) -> Dataset:
        # Each task has its own class names, so labels become plain integers first: Arrow will not
        # join differing ClassLabels.
        parts = [t.train.cast_column("label", Value("int64")) for t in stream.tasks[: task_id + 1]]
        # Classification rows get an empty response so they can join generative tasks' rows.
        response = next((p.features["target_ids"] for p in parts if "target_ids" in p.column_names), None)
        if response is not None:
            empty = lambda p: p.add_column("target_ids", [[]] * len(p)).cast_column("target_ids", response)  # noqa: E731
            parts = [p if "target_ids" in p.column_names else empty(p) for p in parts]
        return concatenate_datasets(parts)
