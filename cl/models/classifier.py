"""The encoder classifier: a Hugging Face encoder, a pooled sentence vector, and linear heads
(one per task, or one over all classes in the class-incremental scenario)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from transformers import AutoModel

from cl.engine.module import ContinualModule, Distributions
from tasks.batching import SEGMENTS, PaddedText


class Classifier(nn.Module):
    """Encoder plus one head per task (task-incremental) or a single head over all classes.

    Args:
        backbone: any ``transformers`` encoder returning ``last_hidden_state``.
        head_sizes: number of classes of each head.
        pooling: ``"mean"`` over real tokens (sentence-transformers models) or ``"cls"``.
        dropout: dropout before the heads.
    """

    def __init__(self, backbone: nn.Module, head_sizes: list[int], pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"model.pooling must be 'mean' or 'cls', got {pooling!r}")
        self.backbone, self.pooling = backbone, pooling
        self.dropout = nn.Dropout(dropout)
        hidden = backbone.config.hidden_size
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in head_sizes)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The pooled sentence vector of each row."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = hidden[:, -input_ids.shape[1] :]  # prompt tuning prepends virtual tokens: drop them
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    def head_logits(self, features: torch.Tensor, head: int) -> torch.Tensor:
        return self.heads[head](self.dropout(features))


@dataclass
class HeadGroup:
    """The rows of a batch that share a head: their index in the batch, logits and head-space labels."""

    head: int
    index: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor


@dataclass
class ClassifierOutputs:
    features: torch.Tensor  # pooled, one row per example
    groups: list[HeadGroup]


class ClassifierModule(ContinualModule):
    """Cross-entropy of each example through its own task's head; accuracy by argmax over the head."""

    auto_model = AutoModel  # how a pretrained backbone of this family is loaded
    length_chunks = 1  # model.length_chunks: passes per batch segment, rows sorted by length

    @staticmethod
    def batching(tasks, probes, stream_cfg: DictConfig, tokenizer, backbone) -> PaddedText:
        if probes:
            raise ValueError(f"stream.general probes and stream.rehearsal data {[p.name for p in probes]} are for "
                             "language models (what one keeps outside the stream, what it rehearses): they need a "
                             "causal LM model, not the encoder classifier")  # fmt: skip
        return PaddedText(getattr(tokenizer, "pad_token_id", None) or 0)

    @classmethod
    def from_config(cls, cfg: DictConfig, backbone: nn.Module, tokenizer, stream, optimizer,
                    **schedule) -> "ClassifierModule":  # fmt: skip
        generative = [t.name for t in stream.tasks if t.kind != "classify"]
        if generative:
            raise ValueError(f"tasks {generative} are generative: they need a causal language model (model=smollm2, "
                             f"hub_lm or tiny_llama), not the encoder classifier {cfg.name}")  # fmt: skip
        chunks = cfg.get("length_chunks", 1)
        if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1:
            raise ValueError(
                f"model.length_chunks must be a positive integer (1: each batch in one pass), got {chunks!r}"
            )
        network = Classifier(backbone, stream.head_sizes(), cfg.pooling, cfg.head_dropout)
        module = cls(network, [t.num_classes for t in stream.tasks], stream.scenario, optimizer, **schedule)
        module.length_chunks = chunks
        return module

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled features. A merged batch is encoded segment by segment, each trimmed to its own
        longest sequence, so merging costs no extra padding; with ``length_chunks`` = k > 1 each
        segment's rows are sorted by length and encoded in k chunks, each trimmed likewise: the
        same examples in the same step (the same gradient up to float rounding and dropout's
        draws) through fewer padded positions."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        sizes = batch[SEGMENTS].tolist() if SEGMENTS in batch else [len(ids)]
        if len(sizes) == 1 and self.length_chunks == 1:
            return self.network.features(ids, mask)
        lengths = mask.sum(1)
        parts, order, start = [], [], 0
        for n in sizes:
            rows = torch.arange(start, start + n, device=ids.device)
            if self.length_chunks > 1:
                rows = rows[lengths[rows].argsort(stable=True)]
            for chunk in rows.tensor_split(min(self.length_chunks, n)):
                width = int(lengths[chunk].max())
                parts.append(self.network.features(ids[chunk, :width], mask[chunk, :width]))
                order.append(chunk)
            start += n
        features = torch.cat(parts)
        # with one chunk per segment the rows stay in batch order: nothing to undo
        return features if self.length_chunks == 1 else features[torch.cat(order).argsort()]

    def forward(self, batch: dict[str, torch.Tensor]) -> ClassifierOutputs:
        return self.outputs(batch, self.encode(batch))

    def outputs(self, batch: dict[str, torch.Tensor], features: torch.Tensor) -> ClassifierOutputs:
        """Each row through its own task's head, from features computed already (``cl.engine.packed``)."""
        labels = self.head_labels(batch["labels"], batch["task_ids"])
        heads = batch["task_ids"] if self.scenario == "task" else torch.zeros_like(batch["task_ids"])
        groups = []
        for head in heads.unique().tolist():
            index = (heads == head).nonzero().squeeze(1)
            groups.append(HeadGroup(head, index, self.network.head_logits(features[index], head), labels[index]))
        return ClassifierOutputs(features, groups)

    def task_loss(self, batch: dict[str, torch.Tensor], out: ClassifierOutputs) -> torch.Tensor:
        """Cross-entropy of each example through its own head, averaged over the batch."""
        return sum(F.cross_entropy(g.logits, g.labels, reduction="sum") for g in out.groups) / len(batch["labels"])

    def class_probs(self, batch: dict[str, torch.Tensor], head: int) -> torch.Tensor:
        return self.network.head_logits(self.encode(batch), head).softmax(-1)

    def route_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(batch)

    def distributions(self, batch: dict[str, torch.Tensor], outputs: ClassifierOutputs | None = None) -> Distributions:
        """Every earlier task's head side by side, one distribution each (class-incremental: the
        single head's earlier classes, one distribution)."""
        features = outputs.features if outputs is not None else self.encode(batch)
        offsets = [*self.class_offsets[: self.task_id + 1]]
        if self.scenario == "class":
            return Distributions(self.network.head_logits(features, 0)[:, : offsets[-1]], [(0, offsets[-1])])
        logits = torch.cat([self.network.head_logits(features, h) for h in range(self.task_id)], -1)
        return Distributions(logits, [(offsets[h], offsets[h + 1]) for h in range(self.task_id)])
