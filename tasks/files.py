"""A task from the user's own CSV/TSV/JSON/JSONL files (one file, or a folder of files, per split)."""

import json
from pathlib import Path

from datasets import DatasetDict, load_dataset

from tasks.prepare import normalize_columns

_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


def check_file(f: Path) -> None:
    """Problems a reader would report badly or not at all, named with the file, line and fix."""
    data = f.read_bytes()
    if not data.strip():
        raise ValueError(f"{f} is empty: give it a header and rows, or point the task at another file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(f"{f} is not UTF-8 (byte {data[err.start]:#x} on line {line}); re-save it as UTF-8") from None
    if f.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{f} line {number} is not valid JSON ({err.msg}): fix or delete it") from None
    elif f.suffix in (".csv", ".tsv") and len([x for x in text.splitlines() if x.strip()]) < 2:
        raise ValueError(f"{f} has a header but no rows")


def _load(path: str):
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"task data file {str(p)!r} does not exist; check the path in the stream config")
    files = sorted(f for f in p.iterdir() if f.suffix in _FORMATS) if p.is_dir() else [p]
    if not files or files[0].suffix not in _FORMATS:
        raise ValueError(f"{str(p)!r}: expected {sorted(_FORMATS)} files")
    kinds = sorted({f.suffix for f in files})
    if len(kinds) > 1:
        raise ValueError(f"folder {p} mixes {kinds} files: keep one format per folder")
    for f in files:
        check_file(f)
    kind = _FORMATS[files[0].suffix]
    extra = {"delimiter": "\t"} if files[0].suffix == ".tsv" else {}
    try:
        return load_dataset(kind, data_files=[str(f) for f in files], split="train", **extra)
    except Exception as err:  # the reader's own message, with the files it was reading
        cause = err.__cause__ or err
        raise ValueError(f"{p}: could not be read as {files[0].suffix} ({type(cause).__name__}: {cause})") from None


def load(train: str, test: str | None = None, text_column: str = "text", label_column: str = "label"):
    """One file or folder (split by the stream's sizes) or separate train and test files.

    Labels may be strings or integers; the class list is the sorted set of training labels.
    """
    train_ds = normalize_columns(_load(train), text_column, label_column, train)
    if test is None:
        return train_ds
    test_ds = normalize_columns(_load(test), text_column, label_column, test, encode=False)
    unknown = sorted(set(test_ds["label"]) - set(train_ds.features["label"].names))
    if unknown:
        raise ValueError(f"{test}: labels {unknown} never occur in the training data {train}")
    test_ds = test_ds.cast_column("label", train_ds.features["label"])
    return DatasetDict(train=train_ds, test=test_ds)
