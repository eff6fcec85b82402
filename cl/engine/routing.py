"""Which task an input belongs to, from what the frozen pretrained model computes for it.

Per-task adapters on a frozen base forget nothing, but evaluating one needs its task id, which a
class-incremental stream does not give. The base model's own features (adapters switched off) do
not change while the stream trains, so a classifier fitted on them at each task's end stays valid:
every class of every task seen keeps its mean feature vector, and an input goes to the task of the
nearest class mean:

- ``prototype``: by cosine similarity;
- ``mahalanobis``: by Mahalanobis distance under the covariance shared by all classes (pooled
  within-class scatter), shrunk towards a multiple of the identity so that a few hundred examples in
  hundreds of dimensions still give a well-conditioned inverse (the "simple shared covariance" rule
  that works well on pretrained features; cf. Lee et al. 2018, Zhou et al. 2023).

Everything is kept as sums (float64), so a resumed run routes exactly as an uninterrupted one.
"""

import torch

KINDS = ("prototype", "mahalanobis")


class Router:
    def __init__(self, kind: str = "mahalanobis", shrinkage: float = 0.1):
        if kind not in KINDS:
            raise ValueError(f"routing must be one of {KINDS}, got {kind!r}")
        if not 0 <= shrinkage <= 1:
            raise ValueError(f"routing shrinkage must be in [0, 1], got {shrinkage}")
        self.kind, self.shrinkage = kind, shrinkage
        self.sums: torch.Tensor | None = None  # [classes, d]: feature sums of each class seen
        self.counts = torch.zeros(0, dtype=torch.float64)
        self.squares: torch.Tensor | None = None  # [d, d]: sum of x x^T over every example
        self.tasks = torch.zeros(0, dtype=torch.long)  # the task of each class
        self.precision: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.tasks)

    def add_task(self, task_id: int, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit task ``task_id``'s classes from its examples' base features and (task-local) labels."""
        x = features.detach().to(torch.float64).cpu()
        labels = labels.cpu()
        classes = int(labels.max()) + 1
        sums = torch.zeros(classes, x.shape[1], dtype=torch.float64).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=classes).to(torch.float64)
        self.sums = sums if self.sums is None else torch.cat([self.sums, sums])
        self.counts = torch.cat([self.counts, counts])
        self.squares = x.T @ x if self.squares is None else self.squares + x.T @ x
        self.tasks = torch.cat([self.tasks, torch.full((classes,), task_id, dtype=torch.long)])
        self.precision = self.fit_precision() if self.kind == "mahalanobis" else None

    def means(self) -> torch.Tensor:
        return self.sums / self.counts.clamp(min=1).unsqueeze(1)

    def fit_precision(self) -> torch.Tensor:
        # within-class scatter = sum x x^T - sum_c n_c mu_c mu_c^T, pooled over every class seen
        means = self.means()
        scatter = self.squares - (means.T * self.counts) @ means
        dof = max(float(self.counts.sum()) - len(self.counts), 1.0)
        cov = scatter / dof
        d = cov.shape[0]
        target = torch.eye(d, dtype=torch.float64) * (torch.trace(cov) / d)
        return torch.linalg.pinv((1 - self.shrinkage) * cov + self.shrinkage * target, hermitian=True)

    def route(self, features: torch.Tensor) -> torch.Tensor:
        """The task of each row's nearest class mean."""
        x = features.detach().to(torch.float64).cpu()
        means = self.means()
        if self.kind == "prototype":
            score = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(means, dim=1).T
            nearest = score.argmax(1)
        else:
            diff = x.unsqueeze(1) - means.unsqueeze(0)  # [n, classes, d]
            nearest = torch.einsum("ncd,de,nce->nc", diff, self.precision, diff).argmin(1)
        return self.tasks[nearest].to(features.device)

    def state_dict(self) -> dict:
        return {"sums": self.sums, "counts": self.counts, "squares": self.squares, "tasks": self.tasks}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.counts, self.squares = state["sums"], state["counts"], state["squares"]
        self.tasks = state["tasks"]
        if self.kind == "mahalanobis" and self.sums is not None:
            self.precision = self.fit_precision()
