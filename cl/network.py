"""The network: a Hugging Face encoder, a pooled sentence vector, and linear classification heads."""

import torch
from torch import nn


class Classifier(nn.Module):
    """Encoder plus one head per task (task-incremental) or a single head over all classes.

    Args:
        encoder: any ``transformers`` encoder returning ``last_hidden_state``.
        head_sizes: number of classes of each head.
        pooling: ``"mean"`` over real tokens (sentence-transformers models) or ``"cls"``.
        dropout: dropout before the heads.
    """

    def __init__(self, encoder: nn.Module, head_sizes: list[int], pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.encoder, self.pooling = encoder, pooling
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in head_sizes)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = hidden[:, -input_ids.shape[1] :]  # prompt tuning prepends virtual tokens: drop them
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    def head_logits(self, features: torch.Tensor, head: int) -> torch.Tensor:
        return self.heads[head](self.dropout(features))
