"""A task from a Hugging Face Hub dataset (needs a network), or a local dataset folder by path."""

from datasets import DatasetDict, load_dataset

from tasks.prepare import normalize_columns


def load(
    path: str,
    name: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    train_split: str = "train",
    test_split: str = "test",
) -> DatasetDict:
    """``datasets.load_dataset(path, name)`` with its splits renamed to train/test and columns to text/label."""
    raw = load_dataset(path, name)
    missing = [s for s in (train_split, test_split) if s not in raw]
    if missing:
        raise ValueError(f"dataset {path!r} has splits {list(raw)}; asked for {missing} (set train_split/test_split)")
    return DatasetDict(
        train=normalize_columns(raw[train_split], text_column, label_column, f"{path}[{train_split}]"),
        test=normalize_columns(raw[test_split], text_column, label_column, f"{path}[{test_split}]"),
    )
