"""Instruction data formats and the published benchmarks' loaders, on small local files written in
the same format as the released data."""

import json

import pytest

from tasks import benchmarks, instructions


def write_json(path, records, lines=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(json.dumps(r) for r in records) if lines else json.dumps(records)
    path.write_text(text)
    return path


def test_alpaca_records_become_prompt_and_response(tmp_path):
    f = write_json(tmp_path / "a.jsonl", [
        {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
        {"instruction": "Say hello.", "input": "", "output": "Hello!"},
    ], lines=True)  # fmt: skip
    ds = instructions.load(str(f), format="alpaca")
    assert ds["text"] == ["Translate to French.\n\ncat", "Say hello."] and ds["target"] == ["chat", "Hello!"]


def test_sharegpt_takes_the_last_assistant_turn_as_the_response(tmp_path):
    f = write_json(tmp_path / "s.json", [
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                           {"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
                      {"role": "assistant", "content": "Paris"}]},
    ])  # fmt: skip
    ds = instructions.load(str(f), format="sharegpt")
    assert ds["text"] == ["Hi\n\nHello\n\n2+2?", "Capital of France?"] and ds["target"] == ["4", "Paris"]


def test_named_columns(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("question,answer\nWhat is 1+1?,2\n")
    ds = instructions.load(str(f), format="columns", prompt_column="question", response_column="answer")
    assert ds["text"] == ["What is 1+1?"] and ds["target"] == ["2"]


@pytest.mark.parametrize(
    "fmt, records, message",
    [
        ("alpaca", [{"instruction": "x", "input": ""}], r"record 1 has no 'output' field"),
        ("sharegpt", [{"conversations": [{"from": "gpt", "value": "hi"}]}], r"record 1 needs a user turn"),
        ("sharegpt", [{"turns": []}], r"record 1 has no 'conversations'"),
        ("columns", [{"prompt": "x"}], r"record 1 has no 'response' field"),
        ("alpaca", [{"instruction": "x", "output": "  "}], r"record 1 has an empty prompt or response"),
        ("chatml", [{"instruction": "x", "output": "y"}], r"format must be one of"),
    ],
)
def test_malformed_records_name_the_file_and_field(tmp_path, fmt, records, message):
    f = write_json(tmp_path / "bad.json", records)
    with pytest.raises(ValueError, match=message) as err:
        instructions.load(str(f), format=fmt)
    assert "bad.json" in str(err.value)


def olora_folder(root, category="TC", name="agnews", labels=("World", "Sports")):
    folder = root / category / name
    write_json(folder / "labels.json", list(labels))
    rows = [{"sentence": f"Title: story {i}\nText: body {i}\n", "label": labels[i % len(labels)]} for i in range(6)]
    write_json(folder / "train.json", rows)
    write_json(folder / "test.json", rows[:4])
    return folder


def test_olora_benchmark_loader_reads_its_released_format(tmp_path):
    olora_folder(tmp_path)
    dd = benchmarks.olora(str(tmp_path), "TC", "agnews")
    assert dd["train"].features["label"].names == ["World", "Sports"]
    assert dd["train"]["label"] == [0, 1, 0, 1, 0, 1] and len(dd["test"]) == 4
    assert dd["train"]["text"][0].startswith("Title: story 0")


def test_olora_loader_names_bad_files(tmp_path):
    folder = olora_folder(tmp_path)
    write_json(folder / "test.json", [{"sentence": "x", "label": "Weather"}])
    with pytest.raises(ValueError, match=r"test.json: record 1 has label 'Weather', not one of labels.json"):
        benchmarks.olora(str(tmp_path), "TC", "agnews")
    with pytest.raises(FileNotFoundError, match="benchmark_root"):
        benchmarks.olora(str(tmp_path), "TC", "yahoo")


def test_trace_format_loads_as_prompt_answer(tmp_path):
    records = [{"prompt": "Summarize: the council met.", "answer": "A meeting."}]
    f = write_json(tmp_path / "MeetingBank" / "train.json", records)
    ds = instructions.load(str(f), format="columns", prompt_column="prompt", response_column="answer")
    assert ds["target"] == ["A meeting."]


def test_published_streams_load_local_samples_in_their_formats(tmp_path):
    """The olora_standard, olora_long and trace stream configs prepare every task from local files
    written in the released formats (the real ones need a network)."""
    from conftest import make_config
    from test_stream import WordTokenizer

    from tasks.prompts import wrap
    from tasks.stream import prepare_tasks

    olora = tmp_path / "CL_Benchmark"
    layout = {"olora_standard": ["TC/dbpedia", "SC/amazon", "TC/yahoo", "TC/agnews"],
              "olora_long": ["NLI/MNLI", "NLI/CB", "WiC/WiC", "COPA/COPA", "QQP/QQP", "BoolQA/BoolQA", "NLI/RTE",
                             "SC/IMDB", "SC/yelp", "SC/amazon", "SC/SST-2", "TC/dbpedia", "TC/agnews",
                             "MultiRC/MultiRC", "TC/yahoo"]}  # fmt: skip
    for path in layout["olora_long"]:
        category, name = path.split("/")
        olora_folder(olora, category, name, labels=("yes", "no"))
    for stream, paths in layout.items():
        cfg = make_config(f"stream={stream}", f"benchmark_root={olora}", "stream.cache=false")
        tasks = prepare_tasks(cfg.stream, WordTokenizer(), 0)
        assert [len(t.train) for t in tasks] == [6] * len(paths) and all(t.label_names == ["yes", "no"] for t in tasks)
    cfg = make_config("stream=olora_standard", f"benchmark_root={olora}")
    before, after = wrap(cfg.stream.template, cfg.stream.tasks.agnews.instruction, None, "classify", "World, Sports")
    assert before + "Title: x" + after == (
        "What is the topic of the following paragraph? Choose one from the option.\n"
        "Option: World, Sports \nTitle: x\nAnswer:"
    )  # O-LoRA's prompt, verbatim

    trace = tmp_path / "TRACE"
    names = ["C-STANCE", "FOMC", "MeetingBank", "Py150", "ScienceQA", "NumGLUE-cm", "NumGLUE-ds", "20Minuten"]
    for name in names:
        for split in ("train", "test"):
            records = [{"prompt": f"{name} q{i}", "answer": f"a{i}"} for i in range(5)]
            write_json(trace / name / f"{split}.json", records)
    cfg = make_config("stream=trace", f"benchmark_root={trace}", "stream.cache=false")
    tasks = prepare_tasks(cfg.stream, WordTokenizer(), 0)
    assert [t.name for t in tasks] == names and all(t.kind == "generate" for t in tasks)
    assert [t.score for t in tasks][2:4] == ["rouge_l", "edit_similarity"] and len(tasks[0].test) == 5
