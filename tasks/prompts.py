"""How a task's examples read to a causal language model: an instruction and the text make the
prompt, the label word and the end-of-sequence token the answer."""

from dataclasses import dataclass

ANSWER = "Answer:"


@dataclass
class TaskPrompt:
    """Token ids around each example of one task: ``prefix + text + suffix + answers[label] + [eos]``."""

    prefix: list[int]
    suffix: list[int]
    answers: list[list[int]]


def build_prompts(tasks, specs, tokenizer, scenario: str) -> list[TaskPrompt]:
    """One ``TaskPrompt`` per task. A task spec may set ``instruction`` and ``label_words`` (one word
    per class, default the class names); a model without a tokenizer needs ``answer_ids`` (token ids
    per class) and may set ``prefix_ids``/``suffix_ids``. In the class-incremental scenario every
    task gets the same instruction, naming every class of the stream: the prompt must not give the
    task away."""
    every = [w for t in tasks for w in t.label_names]
    prompts = []
    for task in tasks:
        spec = specs[task.name]
        if tokenizer is None:
            if spec.get("answer_ids") is None:
                raise ValueError(f"task {task.name!r}: a model without a tokenizer needs answer_ids per class")
            answers = [list(a) for a in spec.answer_ids]
            prefix, suffix = list(spec.get("prefix_ids") or []), list(spec.get("suffix_ids") or [])
        else:
            words = list(spec.get("label_words") or task.label_names)
            if scenario == "class":
                instruction = f"Label the text as one of: {', '.join(every)}."
            else:
                instruction = spec.get("instruction") or f"Label the text as one of: {', '.join(words)}."
            encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
            prefix, suffix = encode(f"{instruction}\nText: "), encode(f"\n{ANSWER}")
            answers = [encode(f" {w}") for w in words]
        if len(answers) != task.num_classes or not all(answers) or len(set(map(tuple, answers))) < len(answers):
            raise ValueError(f"task {task.name!r}: needs {task.num_classes} distinct, non-empty answers, got {answers}")
        prompts.append(TaskPrompt(prefix, suffix, answers))
    return prompts
