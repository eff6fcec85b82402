"""Instruction data the way LLM fine-tuners keep it, as a generative task's ``text`` (the user's
message) and ``target`` (the response):

- ``alpaca``: records with ``instruction``, ``input`` (may be empty) and ``output``;
- ``sharegpt``: records with ``conversations``, a list of turns ``{"from": "human"|"gpt", "value"}``
  (or OpenAI-style ``messages`` with ``{"role": "user"|"assistant", "content"}``); the last assistant
  turn is the response, the turns before it the prompt;
- ``columns``: any two named columns (``prompt_column``, ``response_column``).

From the user's JSON/JSONL/CSV files (``load``) or a hub dataset (``hub``). A record that lacks a
field is named with its file and row.
"""

from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset

from tasks.files import _load

FORMATS = ("alpaca", "sharegpt", "columns")
USER, ASSISTANT = ("human", "user"), ("gpt", "assistant")


def _field(record: dict, key: str, where: str, row: int):
    if key not in record or record[key] is None:
        raise ValueError(f"{where}: record {row} has no {key!r} field (its fields: {sorted(record)})")
    return record[key]


def _alpaca(record: dict, where: str, row: int) -> tuple[str, str]:
    instruction = str(_field(record, "instruction", where, row)).strip()
    extra = str(record.get("input") or "").strip()
    return (f"{instruction}\n\n{extra}" if extra else instruction), str(_field(record, "output", where, row))


def _sharegpt(record: dict, where: str, row: int) -> tuple[str, str]:
    turns = record.get("conversations") or record.get("messages")  # a file may mix both (None where absent)
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: record {row} has no 'conversations' (or 'messages') list")
    speakers = [str(t.get("from") or t.get("role") or "").lower() for t in turns]
    texts = [t.get("value") if t.get("value") is not None else t.get("content") for t in turns]
    last = max((i for i, s in enumerate(speakers) if s in ASSISTANT), default=None)
    if last is None or not any(s in USER for s in speakers[:last]):
        raise ValueError(f"{where}: record {row} needs a user turn followed by an assistant turn; speakers {speakers}")
    prompt = "\n\n".join(str(texts[i]) for i in range(last) if speakers[i] not in ("system",))
    return prompt, str(texts[last])


def to_generative(ds: Dataset, fmt: str, where: str, prompt_column: str = "prompt",
                  response_column: str = "response") -> Dataset:  # fmt: skip
    """The records as ``text``/``target`` pairs; refuses an unknown format or a record missing a field."""
    if fmt not in FORMATS:
        raise ValueError(f"{where}: format must be one of {FORMATS}, got {fmt!r}")
    texts, targets = [], []
    for row, record in enumerate(ds, 1):
        if fmt == "alpaca":
            text, target = _alpaca(record, where, row)
        elif fmt == "sharegpt":
            text, target = _sharegpt(record, where, row)
        else:
            text = str(_field(record, prompt_column, where, row))
            target = str(_field(record, response_column, where, row))
        if not text.strip() or not target.strip():
            raise ValueError(f"{where}: record {row} has an empty prompt or response")
        texts.append(text)
        targets.append(target)
    return Dataset.from_dict({"text": texts, "target": targets})


def load(path: str, format: str = "alpaca", prompt_column: str = "prompt", response_column: str = "response",
         test: str | None = None):  # fmt: skip
    """A file or folder of JSON/JSONL/CSV records in ``format`` (and a separate ``test`` file, giving
    train and test splits; without it the stream's sizes split ``path``)."""
    read = lambda p: to_generative(_load(p), format, str(Path(p).expanduser()), prompt_column, response_column)  # noqa: E731
    return read(path) if test is None else DatasetDict(train=read(path), test=read(test))


def hub(path: str, name: str | None = None, split: str = "train", format: str = "alpaca",
        prompt_column: str = "prompt", response_column: str = "response"):  # fmt: skip
    """A hub dataset (needs a network) or a local dataset folder by path, in ``format``."""
    return to_generative(load_dataset(path, name, split=split), format, f"{path}[{split}]", prompt_column,
                         response_column)  # fmt: skip
