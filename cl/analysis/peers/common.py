"""What the peer scripts share, standard library and torch/transformers only: the data files, the
tokenizer, the accuracy matrix's JSON line. Nothing of this project is imported (Avalanche runs in a
virtual environment where the project is not installed)."""

import argparse
import csv
import json
import resource
import sys
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

TASKS = ("news", "sentiment", "subjectivity", "tweets")
MAX_LENGTH = 64


def read(folder: str, task: str, split: str) -> tuple[list[str], list[str]]:
    with open(Path(folder) / f"{task}_{split}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def load(folder: str, tokenizer) -> list[dict]:
    """Each task's token ids (lists, unpadded) and labels, train and test; class ids from the sorted
    names of the training split."""
    out = []
    encode = lambda xs: tokenizer(xs, truncation=True, max_length=MAX_LENGTH)["input_ids"]  # noqa: E731
    for task in TASKS:
        texts, labels = read(folder, task, "train")
        test_texts, test_labels = read(folder, task, "test")
        names = sorted(set(labels))
        out.append({"name": task, "classes": len(names), "train": (encode(texts), [names.index(x) for x in labels]),
                    "test": (encode(test_texts), [names.index(x) for x in test_labels])})  # fmt: skip
    return out


def setup() -> tuple[argparse.Namespace, list[dict]]:
    """The command line both peer scripts take (``DATA MODEL --strategy --seed``), parsed; the seed
    set; the tasks loaded and tokenized with the model's tokenizer."""
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("model")
    parser.add_argument("--strategy", default="naive", choices=["naive", "distill", "replay"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    return args, load(args.data, AutoTokenizer.from_pretrained(args.model))


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
