"""Turn a raw labelled text dataset into a task's tokenized train and test splits, cached as Arrow.

A source (packaged, hub, files, synthetic) returns a ``Dataset`` (split here) or a ``DatasetDict`` with
``train`` and ``test``; each has a ``text`` column (or ready ``input_ids``) and a ``label`` column.
Subsampling per class and the split are deterministic functions of the seed and the task name, and
the prepared splits are saved with ``save_to_disk`` under a key of everything that shapes them, so a
second run with the same settings does no preparation at all.
"""

import functools
import hashlib
import json
import logging
import os
import zlib

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Value, load_from_disk
from datasets.fingerprint import Hasher
from omegaconf import DictConfig, OmegaConf

from tasks.cache import cache_dir, replace_atomically
from tasks.config import instantiate

log = logging.getLogger(__name__)

PREP_VERSION = 1  # bump when the preparation below changes what it writes


def normalize_columns(ds: Dataset, text_column: str, label_column: str, where: str, encode: bool = True) -> Dataset:
    """Rename the user's columns to ``text``/``label``, refuse empty cells, and make ``label`` a
    ClassLabel (``encode=False``: strings, for a test split encoded by its training split's classes)."""
    for col in (text_column, label_column):
        if col not in ds.column_names:
            raise ValueError(
                f"{where}: no column {col!r}; columns are {ds.column_names}. "
                f"Set text_column/label_column in the task's source config."
            )
    ds = ds.select_columns([text_column, label_column])
    if text_column != "text":
        ds = ds.rename_column(text_column, "text")
    if label_column != "label":
        ds = ds.rename_column(label_column, "label")
    for col, name in (("text", text_column), ("label", label_column)):
        empty = [i for i, x in enumerate(ds[col]) if x is None or (isinstance(x, str) and not x.strip())]
        if empty:
            raise ValueError(
                f"{where}: {len(empty)} row(s) have an empty {name!r} cell (the first is data row {empty[0] + 1}); "
                f"fill them in or drop those rows"
            )
    if not encode:
        return ds.cast_column("label", Value("string"))
    if not isinstance(ds.features["label"], ClassLabel):  # strings or arbitrary integers -> class ids
        ds = ds.cast_column("label", Value("string")).class_encode_column("label")
    warn_near_duplicate_labels(ds.features["label"].names, where)
    return ds


def warn_near_duplicate_labels(names: list[str], where: str) -> None:
    """``pos`` and ``pos `` (or ``Pos``) become two classes: almost always a data error."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(" ".join(str(n).split()).lower(), []).append(n)
    for same in (g for g in groups.values() if len(g) > 1):
        log.warning("%s: labels %s differ only in case or whitespace and count as %d classes", where, same, len(same))


def warn_overlap(name: str, train: Dataset, test: Dataset) -> None:
    """Texts in both splits inflate test accuracy (leakage); say how many."""
    if "text" not in train.column_names:
        return
    seen = set(train["text"])
    shared = sum(t in seen for t in test["text"])
    if shared:
        log.warning("task %r: %d of %d test texts also occur in its training data (leakage)", name, shared, len(test))


def _class_indices(labels: np.ndarray, rng: np.random.Generator) -> dict[int, np.ndarray]:
    return {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def split_and_subsample(raw, spec: DictConfig, seed: int, name: str) -> tuple[Dataset, Dataset]:
    """Per class: a fixed number (or all) of shuffled examples for train and for test."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    train_n, test_n = spec.get("train_per_class"), spec.get("test_per_class")
    if isinstance(raw, DatasetDict):
        missing = {"train", "test"} - set(raw)
        if missing:
            raise ValueError(f"task {name!r}: the source has splits {list(raw)}, needs 'train' and 'test'")
        picks = []
        for split, n in (("train", train_n), ("test", test_n)):
            by_class = _class_indices(np.asarray(raw[split]["label"]), rng)
            idx = np.concatenate([ix[:n] for ix in by_class.values()]) if by_class else np.array([], int)
            picks.append(raw[split].select(np.sort(idx)))
        return picks[0], picks[1]
    fraction = spec.get("test_fraction", 0.2)
    train_idx, test_idx = [], []
    for ix in _class_indices(np.asarray(raw["label"]), rng).values():
        n_test = test_n if test_n is not None else int(round(len(ix) * fraction))
        test_idx.append(ix[:n_test])
        train_idx.append(ix[n_test:][:train_n] if train_n is not None else ix[n_test:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.array([], int)  # noqa: E731
    return raw.select(cat(train_idx)), raw.select(cat(test_idx))


def hold_out(train: Dataset, fraction: float, seed: int, name: str, by_class: bool) -> tuple[Dataset, Dataset]:
    """``fraction`` of the training split (of each class, for classification) as a validation split,
    seeded: settings are chosen on it, never on the test split."""
    if not 0 < fraction < 1:
        raise ValueError(f"stream.validation_fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])
    labels = np.asarray(train["label"]) if by_class else np.zeros(len(train), int)
    held = [ix[: max(1, int(round(fraction * len(ix))))] for ix in _class_indices(labels, rng).values() if len(ix) > 1]
    held = np.sort(np.concatenate(held)) if held else np.array([], int)
    kept = np.setdiff1d(np.arange(len(train)), held)
    if len(held) == 0 or len(kept) == 0:
        raise ValueError(f"task {name!r}: validation_fraction={fraction} leaves no validation or no training data")
    return train.select(kept), train.select(held)


def check_splits(name: str, train: Dataset, test: Dataset, label_names: list[str]) -> None:
    """Fail before training on splits that cannot give a meaningful accuracy."""
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"task {name!r} is empty (train={len(train)}, test={len(test)}): check its source and sizes")
    seen = set(train["label"])
    if len(seen) < 2:
        only = [label_names[i] for i in seen]
        raise ValueError(f"task {name!r} has a single class in training ({only}): a task needs two or more")
    unseen = set(test["label"]) - seen
    if unseen:
        raise ValueError(
            f"task {name!r}: test labels {[label_names[i] for i in sorted(unseen)]} never occur in training; "
            f"add training examples of them or drop them from the test data"
        )


def tokenizer_hasher(tokenizer):
    """A function giving datasets' hash of ``tokenizer``, computed at its first call only (about 0.2 s
    for MiniLM's): a stream's tasks share one, and a stream found in the cache never hashes."""
    return functools.cache(lambda: Hasher.hash(tokenizer))


def _tokenize(ds: Dataset, tokenizer, max_length: int, special: bool, target_length: int, tokenizer_hash) -> Dataset:
    """``text`` -> ``input_ids`` (and a generative task's ``target`` -> ``target_ids``, bare tokens).

    Left to itself, datasets fingerprints each ``map`` by hashing the function, tokenizer included
    (about 0.2 s for MiniLM's, at every call). The fingerprint is named here from the same parts: the
    input's fingerprint, datasets' hash of the tokenizer (``tokenizer_hash()``, computed once for a
    stream) and the settings; ``PREP_VERSION`` stands for the code."""
    for source, column, limit, with_special in (("text", "input_ids", max_length, special),
                                                ("target", "target_ids", target_length, False)):  # fmt: skip
        if source not in ds.column_names:
            continue
        if tokenizer is None:
            raise ValueError("this stream has raw text but the model has no tokenizer")

        def encode(batch, source=source, column=column, limit=limit, special=with_special):
            out = tokenizer(batch[source], truncation=True, max_length=limit, add_special_tokens=special)
            return {column: out["input_ids"]}

        parts = [ds._fingerprint, tokenizer_hash(), source, column, limit, with_special, PREP_VERSION]
        ds = ds.map(encode, batched=True, remove_columns=[source], desc="tokenize", new_fingerprint=Hasher.hash(parts))
    ds = ds.select_columns([c for c in ("input_ids", "target_ids", "label") if c in ds.column_names])
    return ds.map(lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True, desc="lengths")


def split_examples(raw, spec: DictConfig, seed: int, name: str, probe: bool = False) -> tuple[Dataset, Dataset]:
    """A generative task's splits (no classes): seeded shuffles, ``train_examples``/``test_examples``
    of them (all, or ``test_fraction`` held out, when not given). A perplexity probe is text alone."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    train_n, test_n = (0 if probe else spec.get("train_examples")), spec.get("test_examples")
    columns = (raw["train"] if isinstance(raw, DatasetDict) else raw).column_names
    if spec.get("type") == "generate" and "target" not in columns and "target_ids" not in columns:
        raise ValueError(f"task {name!r} is generative (type: generate) but its source gives no 'target' column")
    if isinstance(raw, DatasetDict):
        pick = lambda split, n: raw[split].select(np.sort(rng.permutation(len(raw[split]))[:n]))  # noqa: E731
        train, test = pick("train", train_n), pick("test", test_n)
    else:
        order = rng.permutation(len(raw))
        n_test = test_n if test_n is not None else int(round(len(raw) * spec.get("test_fraction", 0.2)))
        train, test = raw.select(np.sort(order[n_test:][:train_n])), raw.select(np.sort(order[:n_test]))
    if (len(train) == 0 and not probe) or len(test) == 0:
        raise ValueError(f"task {name!r} is empty (train={len(train)}, test={len(test)}): check its source and sizes")
    label = lambda ds: ds if "label" in ds.column_names else ds.add_column("label", [0] * len(ds))  # noqa: E731
    return label(train), label(test)


def _fingerprint(name: str, spec: DictConfig, seed: int, tokenizer, max_length: int, special: bool = True) -> str:
    source = OmegaConf.to_container(spec, resolve=True)
    files = {}  # user files: their size and time enter the key, so an edited file is prepared again
    for value in json.dumps(source).split('"'):
        if len(value) < 4096 and os.path.exists(value):
            st = os.stat(value)
            files[value] = [st.st_size, st.st_mtime_ns]
    tok = getattr(tokenizer, "name_or_path", None), getattr(tokenizer, "vocab_size", None)
    key = [PREP_VERSION, name, source, seed, max_length, tok, files] + ([] if special else ["no-special-tokens"])
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prepare_task(
    name: str,
    spec: DictConfig,
    tokenizer,
    seed: int,
    max_length: int,
    cache: bool = True,
    special_tokens: bool = True,
    probe: bool = False,
    tokenizer_hash=None,
):
    """Return ``(label_names, train, test)`` for one task, from the Arrow cache when possible.
    ``special_tokens=False`` tokenizes the bare text (a language model's prompt wraps it).
    ``probe=True``: a general-ability probe, which needs a test split only. ``tokenizer_hash``: the
    stream's ``tokenizer_hasher(tokenizer)``, shared by its tasks."""
    key = _fingerprint(name, spec, seed, tokenizer, max_length, special_tokens)
    cache = cache and not probe  # a probe's training split is empty, which datasets cannot load back
    path = cache_dir() / "prepared" / f"{name}-{key}"
    if cache and (path / "dataset_dict.json").exists():
        dd = load_from_disk(str(path))
        label = dd["train"].features["label"]
        return getattr(label, "names", []), dd["train"], dd["test"]
    raw = instantiate(spec.source)
    if spec.get("type", "classify") in ("generate", "perplexity"):
        (train, test), label_names = split_examples(raw, spec, seed, name, probe), []
    else:
        train, test = split_and_subsample(raw, {**spec, "train_per_class": 0} if probe else spec, seed, name)
        label_names = train.features["label"].names
        if not probe:
            check_splits(name, train, test, label_names)
    warn_overlap(name, train, test)
    target_length = spec.get("max_target_length", 64)
    tokenizer_hash = tokenizer_hash or tokenizer_hasher(tokenizer)
    tokenize = lambda ds: _tokenize(ds, tokenizer, max_length, special_tokens, target_length, tokenizer_hash)  # noqa: E731
    dd = DatasetDict(train=tokenize(train), test=tokenize(test))
    if cache:
        replace_atomically(path, lambda tmp: dd.save_to_disk(str(tmp)))
        dd = load_from_disk(str(path))
    return label_names, dd["train"], dd["test"]
