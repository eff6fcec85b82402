"""Where tasks come from: user files, local dataset folders (the hub code path), splits and caching."""

import json

import pytest
import torch
from datasets import Dataset
from omegaconf import OmegaConf

from tasks import build_stream
from tasks.prepare import prepare_task


def write_csv(path, rows, header=("text", "label")):
    path.write_text("\n".join([",".join(header), *(f"{t},{y}" for t, y in rows)]) + "\n")
    return path


def rows(n=20, labels=("pos", "neg")):
    return [(f"example {label} {i}", label) for i in range(n) for label in labels]


def spec(source: dict, **sizes):
    return OmegaConf.create({"source": source, **sizes})


def test_raw_text_needs_a_tokenizer(tmp_path):
    f = write_csv(tmp_path / "a.csv", rows(20))
    s = spec({"_target_": "tasks.files.load", "train": str(f)})
    with pytest.raises(ValueError, match="tokenizer"):  # raw text needs a tokenizer
        prepare_task("a", s, None, seed=0, max_length=16, cache=False)


class WordTokenizer:
    """Enough of a tokenizer for preparation tests: one id per word."""

    name_or_path, vocab_size, pad_token_id = "words", 1000, 0

    def __call__(self, texts, truncation=True, max_length=16, add_special_tokens=True):
        return {"input_ids": [[1 + hash(w) % 999 for w in t.split()][:max_length] for t in texts]}


def test_split_sizes_and_determinism(tmp_path):
    f = write_csv(tmp_path / "a.csv", rows(20))
    s = spec({"_target_": "tasks.files.load", "train": str(f)}, train_per_class=10, test_per_class=5)
    names, train, test = prepare_task("a", s, WordTokenizer(), seed=0, max_length=16, cache=False)
    assert names == ["neg", "pos"] and len(train) == 20 and len(test) == 10
    _, train2, _ = prepare_task("a", s, WordTokenizer(), seed=0, max_length=16, cache=False)
    _, train3, _ = prepare_task("a", s, WordTokenizer(), seed=1, max_length=16, cache=False)
    assert train["input_ids"] == train2["input_ids"] and train["input_ids"] != train3["input_ids"]


def test_separate_train_and_test_jsonl_files(tmp_path):
    tr, te = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    tr.write_text("\n".join(json.dumps({"sentence": t, "y": y}) for t, y in rows(6)))
    te.write_text("\n".join(json.dumps({"sentence": t, "y": y}) for t, y in rows(3)))
    src = {"_target_": "tasks.files.load", "train": str(tr), "test": str(te)}
    src |= {"text_column": "sentence", "label_column": "y"}
    names, train, test = prepare_task("j", spec(src), WordTokenizer(), seed=0, max_length=16, cache=False)
    assert names == ["neg", "pos"] and len(train) == 12 and len(test) == 6


def test_local_dataset_folder_goes_through_the_hub_loader(tmp_path):
    folder = tmp_path / "mydata"
    folder.mkdir()
    write_csv(folder / "train.csv", rows(8), header=("review", "stars"))
    write_csv(folder / "test.csv", rows(4), header=("review", "stars"))
    src = {"_target_": "tasks.hub.load", "path": str(folder), "text_column": "review", "label_column": "stars"}
    names, train, test = prepare_task("h", spec(src), WordTokenizer(), seed=0, max_length=16, cache=False)
    assert len(train) == 16 and len(test) == 8 and len(names) == 2


class ShiftedTokenizer(WordTokenizer):
    """WordTokenizer's name and size with other ids: only datasets' hash of the object tells them apart."""

    def __call__(self, texts, **kwargs):
        return {"input_ids": [[i + 1 for i in ids] for ids in super().__call__(texts, **kwargs)["input_ids"]]}


def test_a_streams_tokenizer_is_hashed_once_and_tells_tokenizers_apart(tmp_path, monkeypatch):
    from datasets.fingerprint import Hasher

    from tasks.stream import prepare_tasks

    f = write_csv(tmp_path / "a.csv", rows(20))
    source = {"_target_": "tasks.files.load", "train": str(f)}
    task = {"source": source, "train_per_class": 10, "test_per_class": 5}
    cfg = OmegaConf.create({"name": "s", "max_length": 16, "cache": False, "tasks": {"a": task, "b": task}})
    hashed, original = [], Hasher.hash
    monkeypatch.setattr(Hasher, "hash", staticmethod(lambda x: hashed.append(x) or original(x)))
    a = prepare_tasks(cfg, WordTokenizer(), 0)
    assert sum(isinstance(x, WordTokenizer) for x in hashed) == 1  # two tasks, four splits, one hash
    b = prepare_tasks(cfg, ShiftedTokenizer(), 0)  # datasets must not reuse a's tokens from its file cache
    assert b[0].train["input_ids"] == [[i + 1 for i in ids] for ids in a[0].train["input_ids"]]


def test_prepared_splits_are_cached(tmp_path, monkeypatch):
    f = write_csv(tmp_path / "a.csv", rows(10))
    s = spec({"_target_": "tasks.files.load", "train": str(f)}, test_per_class=3)
    _, first, _ = prepare_task("c", s, WordTokenizer(), seed=0, max_length=16)
    monkeypatch.setattr("tasks.prepare.instantiate", lambda *a, **k: pytest.fail("prepared again"))
    _, second, _ = prepare_task("c", s, WordTokenizer(), seed=0, max_length=16)
    assert first["input_ids"] == second["input_ids"]
    f.write_text(f.read_text() + "one more,pos\n")  # an edited file is a new cache key
    with pytest.raises(pytest.fail.Exception, match="prepared again"):
        prepare_task("c", s, WordTokenizer(), seed=0, max_length=16)


@pytest.mark.parametrize(
    "data, sizes, error",
    [
        (rows(10, labels=("only",)), {}, "single class"),
        (rows(10), {"train_per_class": 0}, "empty"),
    ],
)
def test_bad_tasks_fail_before_training(tmp_path, data, sizes, error):
    f = write_csv(tmp_path / "bad.csv", data)
    s = spec({"_target_": "tasks.files.load", "train": str(f)}, **sizes)
    with pytest.raises(ValueError, match=error):
        prepare_task("bad", s, WordTokenizer(), seed=0, max_length=16, cache=False)


def test_missing_column_and_file_are_named(tmp_path):
    f = write_csv(tmp_path / "a.csv", rows(4), header=("body", "label"))
    with pytest.raises(ValueError, match="no column 'text'.*body"):
        prepare_task("a", spec({"_target_": "tasks.files.load", "train": str(f)}), WordTokenizer(), 0, 16, False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_task("a", spec({"_target_": "tasks.files.load", "train": str(tmp_path / "no.csv")}), None, 0, 16)


def test_test_labels_unseen_in_training_are_rejected(tmp_path):
    tr = write_csv(tmp_path / "tr.csv", rows(4))
    te = write_csv(tmp_path / "te.csv", rows(2, labels=("pos", "meh")))
    src = {"_target_": "tasks.files.load", "train": str(tr), "test": str(te)}
    with pytest.raises(ValueError, match="meh"):
        prepare_task("u", spec(src), WordTokenizer(), 0, 16, False)


def test_stream_order_must_be_a_permutation():
    cfg = OmegaConf.create({"name": "s", "max_length": 8, "order": [0, 0], "tasks": {"a": {}, "b": {}}})
    with pytest.raises(ValueError, match="permutation"):
        build_stream(cfg, None, 0)


def test_collate_pads_to_the_longest_in_the_batch():
    from tasks.stream import Stream, Task

    ds = Dataset.from_dict({"input_ids": [[1, 2], [1, 2, 3, 4]], "label": [0, 1], "length": [2, 4], "task_id": [0, 0]})
    stream = Stream("s", [Task("a", ["x", "y"], ds, ds)])
    batch = stream.collate([ds[0], ds[1]])
    assert batch["input_ids"].shape == (2, 4)
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    order = list(stream.test_loaders(8)[0].sampler)
    assert order == [1, 0]  # evaluation visits the longest first


def test_a_validation_split_is_held_out_of_training_and_can_be_evaluated(build_synthetic, run_synthetic):
    exp = build_synthetic("stream.validation_fraction=0.25")
    for task in exp.stream.tasks:
        train, val, test = (set(map(tuple, s["input_ids"])) for s in (task.train, task.validation, task.test))
        assert len(task.validation) == 16 and len(task.train) == 48  # a quarter of 32 per class, per class
        assert not train & val and sorted(task.validation["label"]) == [0] * 8 + [1] * 8
    res = run_synthetic("stream.validation_fraction=0.25", "stream.evaluate_on=validation", "trainer.max_epochs=1")
    assert res.evaluated_on == "validation" and res.test_examples == [16, 16, 16]
    with pytest.raises(ValueError, match="needs stream.validation_fraction"):
        build_synthetic("stream.evaluate_on=validation")


def varied_lengths(n=200, seed=0):
    import random

    rng = random.Random(seed)
    ids = [[1] * rng.randint(1, 60) for _ in range(n)]
    return Dataset.from_dict({"input_ids": ids, "label": [0] * n, "length": [len(x) for x in ids], "task_id": [0] * n})


def real_share(loader) -> float:
    batches = list(loader)
    return sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel() for b in batches)


def test_length_grouped_batches_cover_every_example_once_with_less_padding():
    from tasks.stream import LengthGroupedBatches, Stream, Task

    ds = varied_lengths()
    stream = Stream("s", [Task("a", ["x"], ds, ds)])
    grouped = stream.train_loader(ds, 8, seed=3, group_by_length=True)
    for _ in range(2):  # every epoch: each example exactly once, in batches of 8 (the last may be short)
        seen = [i for batch in grouped.batch_sampler for i in batch]
        assert sorted(seen) == list(range(len(ds)))
    assert real_share(grouped) > 0.9 > real_share(stream.train_loader(ds, 8, seed=3))
    # Windows are sorted by length, but their content and the batch order are random.
    lengths = ds["length"]
    first = [[lengths[i] for i in b] for b in LengthGroupedBatches(lengths, 8, torch.Generator().manual_seed(0), 5)]
    assert all(b == sorted(b, reverse=True) for b in first)
    assert first != sorted(first, reverse=True)


def test_length_grouped_epoch_resumes_where_it_stopped():
    from tasks.stream import Stream, Task

    ds = varied_lengths(64)
    stream = Stream("s", [Task("a", ["x"], ds, ds)])
    loader = stream.train_loader(ds, 8, seed=5, group_by_length=True)
    list(loader)  # a first epoch
    it = iter(loader)
    done = [next(it)["input_ids"] for _ in range(3)]
    state = loader.epoch_state.clone()
    rest = [b["input_ids"] for b in it]
    again = stream.train_loader(ds, 8, seed=99, group_by_length=True)  # another seed: the state decides
    again.resume_at(state, 3)
    resumed = [b["input_ids"] for b in again]
    assert len(done) + len(resumed) == 8 and all(torch.equal(a, b) for a, b in zip(rest, resumed))
