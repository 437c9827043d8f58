"""Prompt datasets and templates.

A prompt dataset is a list of `TaskItem`s from one of three sources: a JSONL file (one object
per line with `prompt` and `answer`; other keys become the item's fields), a `datasets.Dataset`
with the same columns, or a built-in task by name. Templates turn a question into the text the
model sees: `plain` (as is), `chat` (the tokenizer's chat template) or `r1-zero`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from r1lab.tasks import get_task
from r1lab.tasks.base import TaskItem
from r1lab.tasks.templates import r1_zero_prompt

TEMPLATES = ("plain", "chat", "r1-zero", "r1")


def apply_template(name: str, question: str, tokenizer=None) -> str:
    if name == "plain":
        return question
    if name == "r1-zero":
        return r1_zero_prompt(question)
    if name in ("chat", "r1"):  # r1: the chat template, answered in R1's `<think> ... </think> summary`
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"template '{name}' needs a tokenizer with a chat template")
        return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                             add_generation_prompt=True)
    raise ValueError(f"unknown template '{name}'; templates: {', '.join(TEMPLATES)}")


def encode_texts(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, with the tokenizer's special tokens (BOS) added only where the text
    does not already start with BOS: text from a chat template (Llama 3's, say) already holds it,
    and tokenising it with special tokens would give the model two BOS tokens, a sequence it
    never saw in training."""
    bos = getattr(tokenizer, "bos_token", None)
    templated = [bool(bos) and text.startswith(bos) for text in texts]
    ids: list[list[int]] = [[] for _ in texts]
    for has_bos in (False, True):
        rows = [i for i, flag in enumerate(templated) if flag == has_bos]
        if rows:
            encoded = tokenizer([texts[i] for i in rows], add_special_tokens=not has_bos)["input_ids"]
            for i, row in zip(rows, encoded):
                ids[i] = list(row)
    return ids


def read_jsonl_prompts(path: str | Path, required: tuple[str, ...] = ("prompt", "answer")) -> list[TaskItem]:
    """Rows of `{"prompt": ..., "answer": ..., ...}`; a malformed row stops with its file and line."""
    return [_row_item(row, where, required) for where, row in jsonl_rows(path, "dataset")]


def jsonl_rows(path: str | Path, what: str) -> list[tuple[str, dict]]:
    """(\"FILE:LINE\", object) for every non-empty line of a JSONL file; a line that is not a JSON
    object, a missing file or a file without rows stops with one error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                rows.append((f"{path}:{number}", _parse_row(line, f"{path}:{number}")))
    if not rows:
        raise ValueError(f"{path}: the {what} file holds no rows")
    return rows


def dataset_prompts(dataset: Any, required: tuple[str, ...] = ("prompt", "answer")) -> list[TaskItem]:
    """Items from a `datasets.Dataset` (or any sequence of mappings) with `prompt`/`answer` columns."""
    return [_row_item(dict(row), f"dataset row {index}", required) for index, row in enumerate(dataset)]


def load_prompts(source: str | Path | Any, split: str = "train", count: int = 1000, seed: int = 0) -> list[TaskItem]:
    """A JSONL path, a built-in task name (`count` items of `split`), or a `datasets.Dataset`."""
    if isinstance(source, (str, Path)):
        if str(source).endswith(".jsonl") or Path(source).is_file():
            return read_jsonl_prompts(source)
        return get_task(str(source)).items(count, split, seed)
    return dataset_prompts(source)


def _parse_row(line: str, where: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def _row_item(row: dict, where: str, required: tuple[str, ...]) -> TaskItem:
    missing = [key for key in required if key not in row]
    if missing:
        raise ValueError(f"{where}: missing field {', '.join(map(repr, missing))} (has {', '.join(row) or 'nothing'})")
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: 'prompt' must be a non-empty string")
    answer = row.get("answer", "")
    if not isinstance(answer, (str, int, float)):
        raise ValueError(f"{where}: 'answer' must be a string or a number, got {type(answer).__name__}")
    fields = {k: v for k, v in row.items() if k not in ("prompt", "answer", "solution")}
    return TaskItem(str(row.get("task", "dataset")), prompt, str(answer), str(row.get("solution", "")), fields)
