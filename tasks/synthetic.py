"""Tiny in-memory tasks for tests: random token sequences labelled by which marker token they hold.

Token 0 is padding and 1 the start token. Task ``k`` owns marker tokens ``2 + k*C .. 2 + k*C + C-1``;
each sequence holds exactly one of them at a random place among random filler tokens, and its label is
the marker's index. Different tasks use different markers, so later tasks can overwrite what the
encoder learnt for earlier ones.
"""

import numpy as np
from datasets import ClassLabel, Dataset, Features, Sequence, Value

MAX_TASKS = 8


def marker_task(
    task_index: int,
    num_classes: int = 2,
    examples_per_class: int = 48,
    vocab_size: int = 128,
    min_length: int = 3,
    max_length: int = 6,
    seed: int = 0,
    marker_last: bool = False,
) -> Dataset:
    """``marker_last``: the marker ends the sequence (for the tiny causal LM, which then only has to
    map the last token to an answer; a marker anywhere needs an attention pattern that a 2-layer
    model trained for a few steps finds unreliably, measured)."""
    first_filler = 2 + MAX_TASKS * num_classes
    if not 0 <= task_index < MAX_TASKS or first_filler >= vocab_size:
        raise ValueError(f"marker_task: task_index must be in [0, {MAX_TASKS}) and vocab_size > {first_filler}")
    rng = np.random.default_rng([seed, task_index])
    ids, labels = [], []
    for label in range(num_classes):
        for _ in range(examples_per_class):
            seq = rng.integers(first_filler, vocab_size, rng.integers(min_length, max_length + 1))
            seq[len(seq) - 1 if marker_last else rng.integers(len(seq))] = 2 + task_index * num_classes + label
            ids.append([1, *seq.tolist()])
            labels.append(label)
    features = Features({"input_ids": Sequence(Value("int64")), "label": ClassLabel(num_classes=num_classes)})
    return Dataset.from_dict({"input_ids": ids, "label": labels}, features=features)


def response_task(task_index: int, examples: int = 96, keys: int = 6, vocab_size: int = 128, seed: int = 0) -> Dataset:
    """A generative task for a model without a tokenizer: a random sequence ending in one of ``keys``
    key tokens, whose response is two tokens that depend on the key (``128 + 2k``, ``129 + 2k``
    shifted per task). Untrained, a model almost never generates them; trained, it does."""
    first_filler = 2 + MAX_TASKS * 2
    rng = np.random.default_rng([seed, 100 + task_index])
    ids, targets = [], []
    for _ in range(examples):
        key = int(rng.integers(keys))
        seq = rng.integers(first_filler, vocab_size, int(rng.integers(2, 5))).tolist()
        ids.append([1, *seq, 2 + (task_index * keys + key) % (MAX_TASKS * 2)])
        targets.append([128 + (2 * key + task_index) % 30, 129 + (2 * key + task_index) % 30])
    features = Features({"input_ids": Sequence(Value("int64")), "target_ids": Sequence(Value("int64"))})
    return Dataset.from_dict({"input_ids": ids, "target_ids": targets}, features=features)
