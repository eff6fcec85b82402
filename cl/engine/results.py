"""A run's results: the accuracy matrix and everything beside it, written after every task."""

import json
import math
import platform
import resource
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from cl.engine.metrics import METRIC_NAMES, all_metrics
from tasks.cache import write_bytes_atomically

LIBRARIES = ("torch", "lightning", "transformers", "peft", "datasets", "torchmetrics", "hydra-core", "wandb")


def library_versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh with each program, while
    ``ru_maxrss`` carries a parent's peak over into the programs it starts."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and peak GPU memory allocated, where there is a GPU)."""
    peak = {"rss_mb": peak_rss_mb()}
    if torch.cuda.is_available():
        peak["gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _finite(x):
    """JSON has no NaN: undefined metrics (e.g. BWT of a one-task stream) are written as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


@dataclass
class RunResults:
    """What a run measured. ``accuracy_matrix`` grows by one row per finished task."""

    stream: str
    strategy: str
    seed: int
    scenario: str
    task_names: list[str]
    config: dict
    initial_accuracy: list[float] = field(default_factory=list)
    accuracy_matrix: list[list[float]] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    initial_eval_seconds: float = 0.0
    setup_seconds: dict = field(default_factory=dict)  # model loading, data preparation
    test_examples: list[int] = field(default_factory=list)
    train_examples: list[int] = field(default_factory=list)
    trainable_params: list[int] = field(default_factory=list)
    total_params: int = 0
    strategy_report: list[dict] = field(default_factory=list)
    peak_memory: dict = field(default_factory=dict)
    versions: dict = field(default_factory=library_versions)
    status: str = "running"
    resumed_after: list[int] = field(default_factory=list)  # finished tasks at each resume
    resume_changes: list[list[str]] = field(default_factory=list)  # settings a resume changed
    error: str | None = None  # why a stopped run stopped
    scores: list = field(default_factory=list)  # what R[i][j] holds for each task (accuracy, rouge_l, ...)
    evaluated_on: str = "test"  # the split R was measured on: validation when choosing settings
    samples: list[dict] = field(default_factory=list)  # per evaluation: a few generated answers per task
    # General-ability probes (never trained on): their names and kinds, and one row of scores per
    # evaluation (the initial one, then one after each task), beside the matrix.
    general_names: list[str] = field(default_factory=list)
    general_kinds: list[str] = field(default_factory=list)
    general: list[list[float]] = field(default_factory=list)
    # Per task, with per-task model selection (cl.engine.selection): the validation scores along its
    # training, which of them was chosen, and the epochs trained.
    validation: list[dict] = field(default_factory=list)

    PER_TASK = ("accuracy_matrix", "train_seconds", "eval_seconds", "train_examples", "trainable_params",
                "strategy_report", "validation")  # fmt: skip

    @classmethod
    def load(cls, out_dir: str | Path) -> "RunResults":
        """Read ``results.json``; a damaged or foreign file raises ``ValueError`` naming it."""
        path = Path(out_dir) / "results.json"
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err}): the file is damaged") from None
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if not isinstance(data, dict) or k not in data]
        if missing:
            raise ValueError(f"{path} is not a run's results: it lacks {missing}")
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def truncate(self, tasks: int) -> None:
        """Keep the first ``tasks`` finished tasks (the ones a checkpoint holds)."""
        for name in self.PER_TASK:
            setattr(self, name, getattr(self, name)[:tasks])
        self.samples = self.samples[: tasks + 1]  # the initial evaluation's and each finished task's
        self.general = self.general[: tasks + 1]

    @property
    def completed_tasks(self) -> int:
        return len(self.accuracy_matrix)

    def metrics(self) -> dict[str, float]:
        """The six metrics over the tasks finished so far (the whole stream once finished), and for
        each general-ability probe ``general_drop/<probe>``: the ability lost since before training
        (initial minus latest score; for perplexity, latest minus initial, so positive is a loss too)."""
        k = self.completed_tasks
        if k == 0:
            return {name: math.nan for name in METRIC_NAMES}
        square = [row[:k] for row in self.accuracy_matrix]
        out = all_metrics(square, self.initial_accuracy[:k])
        if len(self.general) > 1:
            for j, (name, kind) in enumerate(zip(self.general_names, self.general_kinds)):
                first, last = self.general[0][j], self.general[-1][j]
                out[f"general_drop/{name}"] = last - first if kind == "perplexity" else first - last
        return out

    def to_dict(self) -> dict:
        data = asdict(self)
        data["completed_tasks"] = self.completed_tasks
        data["metrics"] = self.metrics()
        return _finite(data)

    def save(self, out_dir: str | Path) -> None:
        """``results.json``, ``accuracy_matrix.csv`` and ``accuracy_matrix.png``, each replaced atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.peak_memory = peak_memory_mb()
        write_bytes_atomically(out / "results.json", json.dumps(self.to_dict(), indent=2).encode())
        csv_row = lambda label, accs: ",".join([label, *(f"{a:.4f}" for a in accs)])  # noqa: E731
        lines = [",".join(["after", *self.task_names]), csv_row("initial", self.initial_accuracy)]
        lines += [csv_row(self.task_names[i], row) for i, row in enumerate(self.accuracy_matrix)]
        write_bytes_atomically(out / "accuracy_matrix.csv", ("\n".join(lines) + "\n").encode())
        from cl.engine.plots import general_png, heatmap_png  # matplotlib is slow to import: only when writing

        if self.general:
            png = general_png(self.general, self.general_names, self.general_kinds, self.task_names)
            write_bytes_atomically(out / "general.png", png)

        title = f"{self.strategy} on {self.stream}, seed {self.seed}"
        write_bytes_atomically(out / "accuracy_matrix.png", heatmap_png(self.accuracy_matrix, self.task_names, title))

    def table(self) -> str:
        """The accuracy matrix and the metrics as aligned text."""
        labels = ["initial", *(f"after {n}" for n in self.task_names[: self.completed_tasks])]
        first = max(len(x) for x in [*labels, "train \\ eval"]) + 1
        width = max(8, *(len(n) for n in self.task_names)) + 1
        rows = ["train \\ eval".ljust(first) + "".join(n.rjust(width) for n in self.task_names)]
        for label, row in zip(labels, [self.initial_accuracy, *self.accuracy_matrix]):
            rows.append(label.ljust(first) + "".join(f"{a:{width}.3f}" for a in row))
        if self.general_names:  # the probes as extra columns
            rows[0] += " |" + "".join(n.rjust(width) for n in self.general_names)
            for i, scores in enumerate(self.general[: len(rows) - 1]):
                rows[i + 1] += " |" + "".join(f"{x:{width}.3f}" for x in scores)
        rows.append("")
        rows += [f"{name:<20} {value:8.4f}" for name, value in self.metrics().items()]
        return "\n".join(rows)
