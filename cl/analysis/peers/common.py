"""What the peer scripts share, standard library and torch/transformers only: the data files, the
tokenizer, the accuracy matrix's JSON line. Nothing of this project is imported (Avalanche runs in a
virtual environment where the project is not installed)."""

import csv
import json
import resource
import sys
import time
from pathlib import Path

import torch

TASKS = ("news", "sentiment", "subjectivity", "tweets")
MAX_LENGTH = 64


def read(folder: str, task: str, split: str) -> tuple[list[str], list[int], list[str]]:
    with open(Path(folder) / f"{task}_{split}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = sorted({r["label"] for r in rows})
    return [r["text"] for r in rows], [names.index(r["label"]) for r in rows], names


def load(folder: str, tokenizer) -> list[dict]:
    """Each task's token ids (lists, unpadded) and labels, train and test; class ids from the sorted
    names of the training split."""
    out = []
    for task in TASKS:
        texts, labels, names = read(folder, task, "train")
        test_texts, test_raw, _ = read(folder, task, "test")
        with open(Path(folder) / f"{task}_test.csv", newline="") as f:
            test_labels = [names.index(r["label"]) for r in csv.DictReader(f)]
        encode = lambda xs: tokenizer(xs, truncation=True, max_length=MAX_LENGTH)["input_ids"]  # noqa: E731
        out.append({"name": task, "classes": len(names), "train": (encode(texts), labels),
                    "test": (encode(test_texts), test_labels)})  # fmt: skip
    return out


def pad(seqs: list[list[int]], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = width or max(map(len, seqs))
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
    return ids, mask


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(system: str, strategy: str, matrix: list[list[float]], phases: dict, start: float) -> None:
    """One JSON line on stdout: what the runner reads."""
    final = matrix[-1]
    line = {"system": system, "strategy": strategy, "matrix": matrix, "acc": sum(final) / len(final),
            "wall_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(), **phases}  # fmt: skip
    sys.stdout.write(json.dumps(line) + "\n")
