"""The continual-instruction-tuning benchmarks people publish on, read from their released files.

- O-LoRA's ``CL_Benchmark`` (Wang et al. 2023; the standard 4-task benchmark of Zhang et al. 2015's
  datasets and the 15-task long sequence of Razdaibiedina et al. 2023): one folder per dataset,
  ``<root>/<category>/<dataset>/{train,dev,test}.json`` holding ``[{"sentence", "label"}, ...]`` and
  ``labels.json`` with the label words. Tasks are classification by label word.
- TRACE (Wang et al. 2023): ``<root>/<task>/{train,eval,test}.json`` holding
  ``[{"prompt", "answer"}, ...]``; tasks are generative, each with its own score
  (``tasks.instructions.load(format=columns, prompt_column=prompt, response_column=answer)``).

Neither can be downloaded here; the stream configs (``configs/stream/olora_*.yaml``,
``trace.yaml``) point at a folder given with ``+benchmark_root=...`` (see the README).
"""

import json
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value


def _records(path: Path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: give the benchmark's folder with +benchmark_root=<folder>")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a list of records, got {type(records).__name__}")
    return records


def olora(root: str | None, category: str, name: str, test_split: str = "test") -> DatasetDict:
    """One dataset of O-LoRA's CL_Benchmark as train/test splits with ClassLabel labels. Some datasets
    ship ``dev.json`` and no ``test.json``; then ``dev.json`` is the test split, as O-LoRA uses it."""
    if not root:
        raise ValueError("this stream reads a published benchmark's files: give their folder with benchmark_root=...")
    folder = Path(root).expanduser() / category / name
    if not (folder / f"{test_split}.json").exists() and (folder / "dev.json").exists():
        test_split = "dev"
    labels = _records(folder / "labels.json")
    features = Features({"text": Value("string"), "label": ClassLabel(names=[str(x) for x in labels])})
    splits = {}
    for split, file in (("train", "train.json"), ("test", f"{test_split}.json")):
        path = folder / file
        rows = _records(path)
        for i, r in enumerate(rows, 1):
            missing = [k for k in ("sentence", "label") if k not in r]
            if missing:
                raise ValueError(f"{path}: record {i} lacks {missing}")
            if str(r["label"]) not in features["label"].names:
                raise ValueError(f"{path}: record {i} has label {r['label']!r}, not one of labels.json {labels}")
        splits[split] = Dataset.from_dict(
            {"text": [r["sentence"] for r in rows], "label": [str(r["label"]) for r in rows]}, features=features
        )
    return DatasetDict(splits)
