"""Padded positions the encoder computes in training on the peer bench's four tasks, counted (no
model is run) for the ways a batch can be cut: one padded batch; this framework's replay (the new
examples and the replayed ones as two parts, each at its own length), optionally each part sorted
by length in k passes (``model.length_chunks``); and Avalanche's multi-task forward (each task's rows
of a batch apart). Batches of 16 shuffled examples, replay adds 16 drawn from a 200-example
reservoir, as in the bench.

    python cl/analysis/peers/padding.py DATA MODEL       # DATA: the bench's CSV folder
"""

import random
import sys
from pathlib import Path

from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load  # noqa: E402


def positions(lengths: list[int], passes: int = 1) -> int:
    """Rows x width summed over ``passes`` length-sorted chunks of a batch part."""
    s, n = sorted(lengths), len(lengths)
    return sum(len(c) * max(c) for i in range(passes) if (c := s[i * n // passes : (i + 1) * n // passes]))


def count(tasks: list[dict], replay: bool, seed: int = 0) -> dict[str, int]:
    rng, memory, seen = random.Random(seed), [], 0
    found = {"one batch": 0, "parts": 0, "parts, 2 passes": 0, "parts, 3 passes": 0, "per task": 0}
    for t, task in enumerate(tasks):
        seqs = task["train"][0]
        order = list(range(len(seqs)))
        rng.shuffle(order)
        for i in range(0, len(order), 16):
            new = [(len(seqs[r]), t) for r in order[i : i + 16]]
            old = [memory[rng.randrange(len(memory))] for _ in range(16)] if replay and memory else []
            parts = [[n for n, _ in p] for p in (new, old) if p]
            found["one batch"] += positions([n for p in parts for n in p])
            for k, name in ((1, "parts"), (2, "parts, 2 passes"), (3, "parts, 3 passes")):
                found[name] += sum(positions(p, k) for p in parts)
            for g in {g for _, g in new + old}:
                found["per task"] += positions([n for n, h in new + old if h == g])
        for r in range(len(seqs)):  # reservoir sampling over every example seen
            seen += 1
            if len(memory) < 200:
                memory.append((len(seqs[r]), t))
            elif (j := rng.randrange(seen)) < 200:
                memory[j] = (len(seqs[r]), t)
    return found


def main(data: str, model: str) -> None:
    tasks = load(data, AutoTokenizer.from_pretrained(model))
    for strategy in ("naive", "replay"):
        found = count(tasks, strategy == "replay")
        base = found["parts"]
        print(f"{strategy}: " + ", ".join(f"{k} {v} ({v / base:.3f})" for k, v in found.items()))


if __name__ == "__main__":
    main(*sys.argv[1:3])
