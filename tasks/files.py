"""A task from the user's own CSV/TSV/JSON/JSONL files (one file, or a folder of files, per split)."""

from pathlib import Path

from datasets import DatasetDict, Value, load_dataset

from tasks.prepare import normalize_columns

_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


def _load(path: str):
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"task data file {str(p)!r} does not exist; check the path in the stream config")
    files = sorted(f for f in p.iterdir() if f.suffix in _FORMATS) if p.is_dir() else [p]
    if not files or files[0].suffix not in _FORMATS:
        raise ValueError(f"{str(p)!r}: expected {sorted(_FORMATS)} files")
    kind = _FORMATS[files[0].suffix]
    extra = {"delimiter": "\t"} if files[0].suffix == ".tsv" else {}
    return load_dataset(kind, data_files=[str(f) for f in files], split="train", **extra)


def load(train: str, test: str | None = None, text_column: str = "text", label_column: str = "label"):
    """One file or folder (split by the stream's sizes) or separate train and test files.

    Labels may be strings or integers; the class list is the sorted set of training labels.
    """
    train_ds = normalize_columns(_load(train), text_column, label_column, train)
    if test is None:
        return train_ds
    test_ds = _load(test).select_columns([text_column, label_column])
    if text_column != "text":
        test_ds = test_ds.rename_column(text_column, "text")
    if label_column != "label":
        test_ds = test_ds.rename_column(label_column, "label")
    test_ds = test_ds.cast_column("label", Value("string"))
    unknown = sorted(set(test_ds["label"]) - set(train_ds.features["label"].names))
    if unknown:
        raise ValueError(f"{test}: labels {unknown} never occur in the training data {train}")
    test_ds = test_ds.cast_column("label", train_ds.features["label"])
    return DatasetDict(train=train_ds, test=test_ds)
