"""A stream: the ordered tasks of one continual-learning run, and their data loaders."""

from dataclasses import dataclass, field

import torch
from datasets import Dataset, Value, concatenate_datasets
from omegaconf import DictConfig
from torch.utils.data import DataLoader, DistributedSampler

from tasks.prepare import prepare_task

SCENARIOS = ("task", "class")


@dataclass
class Task:
    """One task: its class names and tokenized splits (columns ``input_ids``, ``label``, ``length``, ``task_id``)."""

    name: str
    label_names: list[str]
    train: Dataset
    test: Dataset

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


@dataclass
class Stream:
    """Tasks in training order.

    ``scenario="task"``: task-incremental, a head per task and the task id known at test time.
    ``scenario="class"``: class-incremental, one head over the union of all tasks' classes, no task id.
    """

    name: str
    tasks: list[Task]
    scenario: str = "task"
    pad_id: int = 0
    class_offsets: list[int] = field(init=False)
    # Set for causal language models (cl/lm.py): batches become prompt + answer, padded on the left.
    prompts: list | None = None
    eos_id: int = 0

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise ValueError(f"stream.scenario must be one of {SCENARIOS}, got {self.scenario!r}")
        sizes = [t.num_classes for t in self.tasks]
        self.class_offsets = [sum(sizes[:i]) for i in range(len(sizes))]

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def head_sizes(self) -> list[int]:
        sizes = [t.num_classes for t in self.tasks]
        return sizes if self.scenario == "task" else [sum(sizes)]

    def train_loader(self, data: Dataset, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> DataLoader:
        """Training keeps a plain seeded shuffle: bucketing by length would change which examples
        share a batch, and with it the learning; only padding is per batch. With ``world`` processes
        each takes its share of the same shuffle (``DistributedSampler``, reshuffled every epoch)."""
        if world > 1:
            sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed)
            return DataLoader(data, batch_size, sampler=sampler, collate_fn=self.collate)
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(data, batch_size, shuffle=True, generator=gen, collate_fn=self.collate)

    def test_loaders(self, batch_size: int, rank: int = 0, world: int = 1) -> list[DataLoader]:
        """Accuracy does not depend on order, so evaluation sorts by length: batches of similar length
        waste little compute on padding. Process ``rank`` of ``world`` takes every ``world``-th example,
        none repeated, so counts summed over processes are exact."""
        loaders = []
        for task in self.tasks:
            order = sorted(range(len(task.test)), key=task.test["length"].__getitem__, reverse=True)
            loaders.append(DataLoader(task.test, batch_size, sampler=order[rank::world], collate_fn=self.collate))
        return loaders

    def union_train(self, upto: int) -> Dataset:
        """Training data of tasks ``0..upto`` together (joint training). Each task has its own class
        names, so labels become plain integers first: Arrow will not join differing ClassLabels."""
        parts = [t.train.cast_column("label", Value("int64")) for t in self.tasks[: upto + 1]]
        return concatenate_datasets(parts)

    def collate(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        """Pad each batch to its own longest sequence (dynamic padding)."""
        if self.prompts is not None:
            from cl.lm import collate

            return collate(rows, self.prompts, self.pad_id, self.eos_id)
        longest = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r["input_ids"])] = torch.as_tensor(r["input_ids"])
            mask[i, : len(r["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, **row_fields(rows)}

    def merge(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One batch of two. ``segments`` keeps the two parts' sizes so that each is encoded padded
        only to its own longest sequence (short current examples are not padded up to long replayed
        ones); a key only one side has (``rows``, ``slots``) is filled with -1 on the other."""
        width = max(a["input_ids"].shape[1], b["input_ids"].shape[1])

        def side(batch: dict, key: str) -> torch.Tensor:
            if key == "segments":
                return batch.get("segments", torch.tensor([len(batch["labels"])], device=batch["labels"].device))
            other = b if batch is a else a
            if key not in batch:
                return torch.full((len(batch["labels"]),), -1, dtype=other[key].dtype, device=other[key].device)
            x = batch[key]
            if key in ("input_ids", "attention_mask") and x.shape[1] < width:
                pad = self.pad_id if key == "input_ids" else 0
                side = (width - x.shape[1], 0) if self.prompts is not None else (0, width - x.shape[1])
                x = torch.nn.functional.pad(x, side, value=pad)
            return x

        return {k: torch.cat([side(a, k), side(b, k)]) for k in dict.fromkeys([*a, *b, "segments"])}


def row_fields(rows: list[dict]) -> dict[str, torch.Tensor]:
    """What every batch carries besides its tokens: labels, task ids, and row positions if given."""
    fields = {
        "labels": torch.tensor([r["label"] for r in rows]),
        "task_ids": torch.tensor([r["task_id"] for r in rows]),
    }
    if "row" in rows[0]:
        fields["rows"] = torch.tensor([r["row"] for r in rows])
    return fields


def build_stream(cfg: DictConfig, tokenizer, seed: int) -> Stream:
    """Prepare every task named in ``cfg.tasks``, in ``cfg.order`` if given (indices into that list)."""
    names = list(cfg.tasks)
    order = list(cfg.order) if cfg.get("order") is not None else list(range(len(names)))
    if sorted(order) != list(range(len(names))):
        raise ValueError(f"stream.order must be a permutation of 0..{len(names) - 1} (tasks {names}), got {order}")
    tasks = []
    for task_id, i in enumerate(order):
        name = names[i]
        labels, train, test = prepare_task(
            name, cfg.tasks[name], tokenizer, seed, cfg.max_length, cfg.get("cache", True),
            special_tokens=cfg.get("special_tokens", True),
        )  # fmt: skip
        train = train.add_column("task_id", [task_id] * len(train))
        test = test.add_column("task_id", [task_id] * len(test))
        tasks.append(Task(name, labels, train, test))
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    return Stream(cfg.name, tasks, cfg.get("scenario", "task"), pad_id)
