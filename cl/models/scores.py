"""How a task's test split is scored; ``R[i][j]`` holds task j's score.

Built in, each a mean over examples (sums and counts, so exact across processes): ``accuracy``
(classification), ``exact_match`` (the generated text equals the reference, whitespace stripped),
``rouge_l`` (ROUGE-L F-measure, torchmetrics' implementation) and ``edit_similarity``
(1 - character edit distance / the longer length, TRACE's code-completion score, from torchmetrics'
edit distance). Any torchmetrics text metric can be named instead, ``{_target_: torchmetrics.text.
BLEUScore, nested_targets: true}``; it is computed over the whole test split, as that metric defines.
"""

import torch
from hydra.utils import instantiate
from torchmetrics import MeanMetric, Metric
from torchmetrics.functional.text import edit_distance, rouge_score

BUILT_IN = ("accuracy", "exact_match", "rouge_l", "edit_similarity")


def make_metric(score) -> Metric:
    if isinstance(score, str):
        if score not in BUILT_IN:
            raise ValueError(f"score must be one of {BUILT_IN} or {{_target_: <torchmetrics metric>}}, got {score!r}")
        return MeanMetric()
    settings = {k: v for k, v in score.items() if k != "nested_targets"}
    metric = instantiate(settings)
    if not isinstance(metric, Metric):
        raise ValueError(f"score {score} is not a torchmetrics Metric")
    return metric


def per_example(score: str, preds: list[str], refs: list[str]) -> torch.Tensor:
    if score == "exact_match":
        return torch.tensor([float(p.strip() == r.strip()) for p, r in zip(preds, refs)])
    if score == "rouge_l":
        return torch.stack([rouge_score(p, r, rouge_keys="rougeL")["rougeL_fmeasure"] for p, r in zip(preds, refs)])
    if score == "edit_similarity":
        return torch.tensor([1 - float(edit_distance([p], [r])) / max(len(p), len(r), 1) for p, r in zip(preds, refs)])
    raise ValueError(f"{score!r} is not a text score")


def update(metric: Metric, score, preds: list[str], refs: list[str]) -> None:
    if isinstance(score, str):
        metric.update(per_example(score, preds, refs).to(metric.device))
    else:
        metric.update(preds, [[r] for r in refs] if score.get("nested_targets") else refs)
