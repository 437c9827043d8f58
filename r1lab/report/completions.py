"""What the model wrote: samples.jsonl and the held-out examples as tables, the <think> part set apart.

A samples.jsonl row holds {"step", "question" or "prompt", "completion", "reward", "advantage",
"answer"} and, when the trainer records them, "rewards": {name: value} with each reward
function's own score; every reward name becomes a column of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_ROWS = 2000  # a page stays quick to open; longer tables keep whole steps, evenly spread
THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)
CLOSE_THINK = "</think>"


@dataclass
class Column:
    """A table column: the row key it shows, its heading, and how it filters and sorts
    (`number`: by value and ranges; `text` and `completion`: by substring)."""

    key: str
    label: str
    kind: Literal["number", "text", "completion"] = "number"


@dataclass
class CompletionTable:
    """Rows of completions under their columns; `total` counts the rows before thinning."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    total: int
    note: str = ""
    steps: list[Any] = field(default_factory=list)


def think_parts(text: str) -> list[tuple[str, str]]:
    """Split a completion into ("text", ...) and ("think", ...) pieces that join back to `text`.

    A think piece runs from <think> to </think> inclusive, or to the end when the completion was
    cut off inside it. A </think> with no <think> before it closes a think part that the prompt
    opened (templates that end with "<think>"): the text up to it is the think piece.
    """
    parts: list[tuple[str, str]] = []
    start = 0
    close = text.find(CLOSE_THINK)
    opened = text.find("<think>")
    if close != -1 and (opened == -1 or close < opened):
        start = close + len(CLOSE_THINK)
        parts.append(("think", text[:start]))
    for match in THINK.finditer(text, start):
        if match.start() > start:
            parts.append(("text", text[start:match.start()]))
        parts.append(("think", match.group()))
        start = match.end()
    if start < len(text) or not parts:
        parts.append(("text", text[start:]))
    return parts


def sample_table(samples: list[dict[str, Any]]) -> CompletionTable | None:
    """The training completions of samples.jsonl: step, prompt, answer, completion, each reward,
    the total reward and the advantage."""
    if not samples:
        return None
    reward_names: list[str] = []
    for row in samples:
        rewards = row.get("rewards")
        if isinstance(rewards, dict):
            reward_names.extend(name for name in rewards if name not in reward_names)
    columns = [Column("step", "step"), Column("prompt", "prompt", "text"), Column("answer", "answer", "text"),
               Column("completion", "completion", "completion"),
               *(Column(f"rewards.{name}", name) for name in reward_names),
               Column("reward", "reward"), Column("advantage", "advantage")]
    rows = [sample_row(row, reward_names) for row in samples]
    columns = [c for c in columns if c.kind == "completion" or any(row[c.key] is not None for row in rows)]
    return thinned(CompletionTable("Completions during training", columns, rows, len(rows)))


def sample_row(row: dict[str, Any], reward_names: list[str]) -> dict[str, Any]:
    rewards = row.get("rewards") if isinstance(row.get("rewards"), dict) else {}
    cells = {"step": row.get("step"), "prompt": _text(row.get("prompt", row.get("question"))),
             "answer": _text(row.get("answer")), "completion": _text(row.get("completion")) or "",
             "reward": row.get("reward"), "advantage": row.get("advantage")}
    cells.update({f"rewards.{name}": rewards.get(name) for name in reward_names})
    return cells


def example_table(evaluations: Any) -> CompletionTable | None:
    """The held-out examples each evaluation kept: step, prompt, answer, completion, correct."""
    if not isinstance(evaluations, list):
        return None
    rows = []
    for evaluation in evaluations:
        if not isinstance(evaluation, dict):
            continue
        for example in evaluation.get("examples") or []:
            if isinstance(example, dict):
                correct = example.get("correct")
                rows.append({"step": evaluation.get("step"), "prompt": _text(example.get("prompt")),
                             "answer": _text(example.get("answer")),
                             "completion": _text(example.get("completion")) or "",
                             "correct": None if correct is None else int(bool(correct))})
    if not rows:
        return None
    columns = [Column("step", "step"), Column("prompt", "prompt", "text"), Column("answer", "answer", "text"),
               Column("completion", "completion", "completion"), Column("correct", "correct")]
    return thinned(CompletionTable("Held-out examples (greedy)", columns, rows, len(rows)))


def thinned(table: CompletionTable, max_rows: int = MAX_ROWS) -> CompletionTable:
    """The table with at most `max_rows` rows, keeping every row of evenly spread steps."""
    steps = list(dict.fromkeys(row["step"] for row in table.rows))
    table.steps = steps
    if len(table.rows) <= max_rows:
        return table
    per_step = len(table.rows) / len(steps)
    keep_count = max(1, int(max_rows // per_step))
    kept = {steps[round(i * (len(steps) - 1) / max(1, keep_count - 1))] for i in range(keep_count)}
    table.rows = [row for row in table.rows if row["step"] in kept]
    table.steps = [step for step in steps if step in kept]
    table.note = f"{len(table.rows)} of {table.total} rows: every row of {len(kept)} of the {len(steps)} logged steps"
    return table


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
