"""A stream: the ordered tasks of one continual-learning run, and their data loaders."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset, Value, concatenate_datasets
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from tasks.batching import PaddedText, merge
from tasks.prepare import hold_out, prepare_task, tokenizer_hasher

SCENARIOS = ("task", "class")
KINDS = ("classify", "generate")
PROBE_KINDS = (*KINDS, "perplexity")


@dataclass
class Task:
    """One task: its class names and tokenized splits (columns ``input_ids``, ``label``, ``length``,
    ``task_id``, and for a generative task ``target_ids``, the response).

    ``kind``: ``classify`` (answers are the class names' label words) or ``generate`` (free-form
    responses); ``score``: how its test split is scored (``accuracy``, ``exact_match``, ``rouge_l``,
    ``edit_similarity``, or ``{_target_: <torchmetrics text metric>}``); ``max_new_tokens``: the
    generation budget of a generative task.
    """

    name: str
    label_names: list[str]
    train: Dataset
    test: Dataset
    kind: str = "classify"
    score: Any = "accuracy"
    max_new_tokens: int = 32
    validation: Dataset | None = None  # held out of the training data (stream.validation_fraction)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


class ResumableLoader(DataLoader):
    """A seeded shuffling loader that can continue an epoch where it was stopped: each epoch's
    order and worker seeds are drawn from ``generator``, so its state at the epoch's start and the
    number of batches already trained give the rest of the epoch exactly (``resume_at``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch_state: torch.Tensor | None = None
        self.skip = 0

    def resume_at(self, epoch_state: torch.Tensor, batches: int) -> None:
        self.generator.set_state(epoch_state)
        self.skip = batches

    def __iter__(self):
        self.epoch_state = self.generator.get_state()  # before the epoch draws its order from it
        skip, self.skip = self.skip, 0
        for i, batch in enumerate(super().__iter__()):
            if i >= skip:
                yield batch


class LengthGroupedBatches(Sampler[list[int]]):
    """Batches of examples of similar length in a seeded random order (Hugging Face's
    ``group_by_length``): each epoch shuffles the examples, sorts each window of ``window`` batches'
    worth by length, cuts it into batches and shuffles the batches. Padding shrinks; which examples
    share a batch is still random within a window. Draws only from ``generator``, so the loader's
    state at an epoch's start gives the same batches again (``ResumableLoader.resume_at``)."""

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator, window: int = 50):
        self.lengths, self.batch_size, self.generator, self.window = lengths, batch_size, generator, window

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order, size = torch.randperm(len(self.lengths), generator=self.generator).tolist(), self.batch_size
        batches = []
        for start in range(0, len(order), size * self.window):
            window = sorted(order[start : start + size * self.window], key=self.lengths.__getitem__, reverse=True)
            batches += [window[i : i + size] for i in range(0, len(window), size)]
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]


def example_lengths(data: Dataset) -> list[int]:
    """Tokens of each row's text and, for a generative row, its response (what padding depends on)."""
    lengths = list(data["length"]) if "length" in data.column_names else [len(x) for x in data["input_ids"]]
    if "target_ids" in data.column_names:
        lengths = [n + len(t) for n, t in zip(lengths, data["target_ids"])]
    return lengths


@dataclass
class Stream:
    """Tasks in training order.

    ``scenario="task"``: task-incremental, a head per task and the task id known at test time.
    ``scenario="class"``: class-incremental, one head over the union of all tasks' classes, no task id.
    ``collate`` turns a list of rows into a batch (``tasks.batching``); the model family chooses it.
    """

    name: str
    tasks: list[Task]
    scenario: str = "task"
    collate: Callable[[list[dict]], dict] = field(default_factory=PaddedText)  # rows -> batch
    # General-ability probes: scored beside every task's test split, never trained on.
    probes: list[Task] = field(default_factory=list)
    evaluate_on: str = "test"  # or "validation": choosing settings must never read the test split
    # General data a strategy may rehearse (general_replay): trained on, never scored.
    rehearsal: list[Task] = field(default_factory=list)

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise ValueError(f"stream.scenario must be one of {SCENARIOS}, got {self.scenario!r}")

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def head_sizes(self) -> list[int]:
        sizes = [t.num_classes for t in self.tasks]
        return sizes if self.scenario == "task" else [sum(sizes)]

    def train_loader(self, data: Dataset, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                     group_by_length: bool = False) -> DataLoader:  # fmt: skip
        """A seeded shuffle, padded per batch; ``group_by_length``: batches of similar length
        (``LengthGroupedBatches``), less padding but a change in which examples share a batch, so
        off by default. With ``world`` processes each takes its share of the same shuffle
        (``DistributedSampler``, reshuffled every epoch; no grouping)."""
        if world > 1:
            sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed)
            return DataLoader(data, batch_size, sampler=sampler, collate_fn=self.collate)
        gen = torch.Generator().manual_seed(seed)
        if group_by_length:
            batches = LengthGroupedBatches(example_lengths(data), batch_size, gen)
            return ResumableLoader(data, batch_sampler=batches, generator=gen, collate_fn=self.collate)
        return ResumableLoader(data, batch_size, shuffle=True, generator=gen, collate_fn=self.collate)

    def test_loaders(self, batch_size: int, rank: int = 0, world: int = 1) -> list[DataLoader]:
        """The scored split of every task, then every probe (``eval_loader``)."""
        return [self.eval_loader(self.scored_split(t), batch_size, rank, world) for t in [*self.tasks, *self.probes]]

    def validation_loader(self, task_id: int, batch_size: int, rank: int = 0, world: int = 1) -> DataLoader:
        """Task ``task_id``'s validation split, to choose among its training epochs."""
        task = self.tasks[task_id]
        if task.validation is None:
            raise ValueError(f"task {task.name!r} has no validation split: set stream.validation_fraction (e.g. 0.2)")
        return self.eval_loader(task.validation, batch_size, rank, world)

    def eval_loader(self, split: Dataset, batch_size: int, rank: int = 0, world: int = 1) -> DataLoader:
        """Accuracy does not depend on order, so evaluation sorts by length: batches of similar length
        waste little compute on padding. Process ``rank`` of ``world`` takes every ``world``-th example,
        none repeated, so counts summed over processes are exact."""
        lengths = list(split["length"])  # one read of the column: indexing datasets' Column row by row is slow
        order = sorted(range(len(split)), key=lengths.__getitem__, reverse=True)
        return DataLoader(split, batch_size, sampler=order[rank::world], collate_fn=self.collate)

    def scored_split(self, task: Task) -> Dataset:
        """The split a task is scored on: its test split, or its validation split when choosing
        settings (``evaluate_on=validation``); probes are always scored on their test split."""
        if self.evaluate_on == "validation" and any(task is t for t in self.tasks):
            return task.validation
        return task.test

    def merge(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One batch of two, padded on the side this stream's collate pads (``tasks.batching.merge``)."""
        return merge(a, b, self.collate.pad_id, self.collate.side)


def union(splits: list[Dataset]) -> Dataset:
    """Several tasks' rows as one dataset (joint and multitask training). Each task has its own class
    names, so labels become plain integers first (Arrow will not join differing ClassLabels), and
    classification rows get an empty response so they can join generative tasks' rows."""
    parts = [split.cast_column("label", Value("int64")) for split in splits]
    response = next((p.features["target_ids"] for p in parts if "target_ids" in p.column_names), None)
    if response is not None:
        empty = lambda p: p.add_column("target_ids", [[]] * len(p)).cast_column("target_ids", response)  # noqa: E731
        parts = [p if "target_ids" in p.column_names else empty(p) for p in parts]
    return concatenate_datasets(parts)


def prepare_tasks(cfg: DictConfig, tokenizer, seed: int, probes: bool = False, rehearsal: bool = False) -> list[Task]:
    """Prepare every task named in ``cfg.tasks``, in ``cfg.order`` if given (indices into that list);
    ``probes=True``: the general-ability probes of ``cfg.general`` instead (numbered after the tasks);
    ``rehearsal=True``: the general data of ``cfg.rehearsal`` (generative, numbered after the probes)."""
    section = "general" if probes else "rehearsal" if rehearsal else "tasks"
    specs = cfg.get(section) or {}
    names = list(specs)
    order = list(cfg.order) if cfg.get("order") is not None and section == "tasks" else list(range(len(names)))
    if sorted(order) != list(range(len(names))):
        raise ValueError(f"stream.order must be a permutation of 0..{len(names) - 1} (tasks {names}), got {order}")
    kinds = PROBE_KINDS if probes else ("generate",) if rehearsal else KINDS
    probes_n = len(cfg.get("general") or {})
    first_id = {"tasks": 0, "general": len(cfg.tasks), "rehearsal": len(cfg.tasks) + probes_n}[section]
    tasks = []
    tokenizer_hash = tokenizer_hasher(tokenizer)  # one hash for the stream, at its first cache miss
    for task_id, i in enumerate(order, first_id):
        name, spec = names[i], specs[names[i]]
        kind = spec.get("type", "classify")
        if kind not in kinds:
            raise ValueError(f"stream.{section}.{name}.type must be one of {kinds}, got {kind!r}")
        labels, train, test = prepare_task(
            name, spec, tokenizer, seed, spec.get("max_length", cfg.max_length), cfg.get("cache", True),
            special_tokens=cfg.get("special_tokens", True), probe=probes, tokenizer_hash=tokenizer_hash,
        )  # fmt: skip
        validation = None
        if cfg.get("validation_fraction") and section == "tasks":
            train, validation = hold_out(train, cfg.validation_fraction, seed, name, kind == "classify")
            validation = validation.add_column("task_id", [task_id] * len(validation))
        train = train.add_column("task_id", [task_id] * len(train))
        test = test.add_column("task_id", [task_id] * len(test))
        score = spec.get("score") or ("accuracy" if kind == "classify" else "rouge_l")
        score = OmegaConf.to_container(score, resolve=True) if isinstance(score, DictConfig) else score
        tasks.append(Task(name, labels, train, test, kind, score, spec.get("max_new_tokens", 32), validation))
    return tasks


def build_stream(cfg: DictConfig, tokenizer, seed: int, batching: Callable | None = None):
    """The prepared tasks (and general-ability probes) as a stream; ``batching(tasks, probes)`` gives
    its collate (default: the text padded on the right with the tokenizer's pad id)."""
    tasks, probes = prepare_tasks(cfg, tokenizer, seed), prepare_tasks(cfg, tokenizer, seed, probes=True)
    rehearsal = prepare_tasks(cfg, tokenizer, seed, rehearsal=True)
    # A batching formats every task, probe and rehearsal set by its id (one prompt each).
    pad_id = getattr(tokenizer, "pad_token_id", None) or 0
    collate = batching(tasks, [*probes, *rehearsal]) if batching else PaddedText(pad_id)
    evaluate_on = cfg.get("evaluate_on", "test")
    if evaluate_on not in ("test", "validation"):
        raise ValueError(f"stream.evaluate_on must be test or validation, got {evaluate_on!r}")
    if evaluate_on == "validation" and not cfg.get("validation_fraction"):
        raise ValueError("stream.evaluate_on=validation needs stream.validation_fraction (the share held out)")
    return Stream(cfg.name, tasks, cfg.get("scenario", "task"), collate, probes, evaluate_on, rehearsal)
