"""How a task's examples read to a causal language model: an instruction and the text make the
prompt; the label word (classification) or the response (generation), then the end-of-sequence
token, make the answer.

Templates, per stream (``stream.template``) or per task (``template``):

- ``plain`` (base models): ``{instruction}\\nText: {text}\\nAnswer:`` for classification, the
  Alpaca layout ``### Instruction:\\n{instruction}\\n\\n{text}\\n\\n### Response:\\n`` for generation;
- ``chat`` (instruct models): the tokenizer's own chat template, the instruction and text as the
  user's message and the answer as the assistant's;
- any string with ``{instruction}``, ``{text}`` and optionally ``{options}`` (the label words), e.g.
  a benchmark's published prompt.
"""

from dataclasses import dataclass

ANSWER = "Answer:"
TEXT = "\u241ftext\u241f"  # a placeholder no tokenizer merges with its neighbours
PLAIN = {
    "classify": "{instruction}\nText: {text}\n" + ANSWER,
    "generate": "### Instruction:\n{instruction}\n\n{text}\n\n### Response:\n",
}


@dataclass
class TaskPrompt:
    """Token ids around each example of one task: ``prefix + text + suffix + answer + [eos]``, where
    the answer is ``answers[label]`` (classification) or the example's own response (generation);
    a perplexity probe's example is its text alone."""

    prefix: list[int]
    suffix: list[int]
    answers: list[list[int]]
    kind: str = "classify"

    @property
    def generative(self) -> bool:
        return self.kind == "generate"


def wrap(template: str, instruction: str, tokenizer, kind: str, options: str = "") -> tuple[str, str]:
    """The text before and after ``{text}`` once ``template`` is filled in (``{options}``: the label
    words, comma-separated, as O-LoRA's prompts list them)."""
    if template == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("stream.template=chat needs a tokenizer with a chat template; use template=plain")
        message = f"{instruction}\n\n{TEXT}" if instruction else TEXT
        filled = tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                               add_generation_prompt=True)  # fmt: skip
    else:
        layout = PLAIN[kind] if template == "plain" else template
        if "{text}" not in layout:
            raise ValueError(f"prompt template {template!r} has no {{text}} placeholder")
        filled = layout.replace("{instruction}", instruction).replace("{options}", options).replace("{text}", TEXT)
        if not instruction:  # no empty instruction line
            filled = filled.replace("### Instruction:\n\n\n", "### Instruction:\n").lstrip("\n")
    before, after = filled.split(TEXT)
    return before, after


def build_prompts(tasks, specs, tokenizer, scenario: str, template: str = "plain", probes=(),
                  probe_specs=None) -> list[TaskPrompt]:  # fmt: skip
    """One ``TaskPrompt`` per task, then one per general-ability probe. A task spec may set
    ``instruction``, ``template`` and ``label_words`` (one word per class, default the class names);
    a model without a tokenizer needs ``answer_ids`` (token ids per class) and may set
    ``prefix_ids``/``suffix_ids``. In the class-incremental scenario every classification task gets
    the same instruction, naming every class of the stream: the prompt must not give the task away
    (probes keep their own)."""
    every = [w for t in tasks for w in t.label_names]
    prompts = []
    for task, spec, own_scenario in [*((t, specs[t.name], scenario) for t in tasks),
                                     *((p, probe_specs[p.name], "task") for p in probes)]:  # fmt: skip
        generative, scenario_now = task.kind == "generate", own_scenario
        if task.kind == "perplexity":
            prompts.append(TaskPrompt([], [], [], task.kind))
            continue
        if tokenizer is None:
            if spec.get("answer_ids") is None and not generative:
                raise ValueError(f"task {task.name!r}: a model without a tokenizer needs answer_ids per class")
            answers = [list(a) for a in spec.get("answer_ids") or []]
            prefix, suffix = list(spec.get("prefix_ids") or []), list(spec.get("suffix_ids") or [])
        else:
            encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
            own = spec.get("template") or template
            if generative:
                instruction, answers = spec.get("instruction") or "", []
            else:
                words = list(spec.get("label_words") or task.label_names)
                named = ", ".join(every if scenario_now == "class" else words)
                instruction = f"Label the text as one of: {named}."
                if scenario_now != "class" and spec.get("instruction"):
                    instruction = spec.instruction
                # After "Answer:" a word follows a space; a chat assistant's turn starts the word itself.
                answers = [encode(w if own == "chat" else f" {w}") for w in words]
            options = "" if generative else ", ".join(words)
            before, after = wrap(own, instruction, tokenizer, task.kind, options)
            prefix, suffix = encode(before), encode(after)
        if not generative and (len(answers) != task.num_classes or not all(answers)
                               or len(set(map(tuple, answers))) < len(answers)):  # fmt: skip
            raise ValueError(f"task {task.name!r}: needs {task.num_classes} distinct, non-empty answers, got {answers}")
        prompts.append(TaskPrompt(prefix, suffix, answers, task.kind))
    return prompts
