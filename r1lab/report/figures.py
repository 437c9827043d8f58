"""A run's summary.json as tables: the scalar figures, before/after, a pipeline's per-stage table,
the evaluations along the run.

Summaries differ by job, so nothing here knows a job: a scalar at the top level (or one level down,
as `outer.inner`) is a figure; `before` and `after` mappings make a before/after table; `table`, a
list of rows with a `stage`, is a pipeline's table; `evaluations`, a list of rows with a `step`, is
the held-out evaluation at each point of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# keys that get a section of their own, or that repeat what the page already shows
SECTION_KEYS = {"before", "after", "table", "evaluations", "final_evaluation", "examples_after", "config",
                "layout", "greedy_path", "completions"}


@dataclass
class Table:
    """Rows of cells under named columns; a cell is any JSON scalar (the template formats it)."""

    columns: list[str]
    rows: list[list[Any]]


@dataclass
class BeforeAfter:
    """One metric before and after training, and the change."""

    metric: str
    before: Any
    after: Any
    change: float | None


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def scalar_figures(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) for the summary's scalars; a mapping of scalars (e.g. seconds_by_phase) gives
    `outer.inner` names. Lists and the sectioned keys are left to their own tables."""
    figures = []
    for key, value in summary.items():
        if key in SECTION_KEYS:
            continue
        if is_scalar(value):
            figures.append((key, value))
        elif isinstance(value, dict):
            figures.extend((f"{key}.{inner}", v) for inner, v in value.items() if is_scalar(v))
    return figures


def before_after(summary: dict[str, Any]) -> list[BeforeAfter]:
    """The before/after rows of a summary with `before` and `after` mappings (R1-Zero, GRPO)."""
    before, after = summary.get("before"), summary.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    rows = []
    for metric in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(metric), after.get(metric)
        if not (is_scalar(old) and is_scalar(new)) or (old is None and new is None):
            continue
        rows.append(BeforeAfter(metric, old, new, new - old if _is_number(old) and _is_number(new) else None))
    return rows


def stage_table(summary: dict[str, Any]) -> Table | None:
    """A pipeline's `table`: one row per stage, one column per figure any stage reports."""
    rows = summary.get("table")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        return None
    return rows_table(rows, first="stage")


def evaluations_table(summary: dict[str, Any]) -> Table | None:
    """The held-out evaluations along the run, a row per evaluation step."""
    rows = summary.get("evaluations")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        return None
    return rows_table(rows, first="step")


def rows_table(rows: list[dict[str, Any]], first: str) -> Table:
    """Columns: `first`, then every scalar key in the order rows first show it."""
    columns = [first]
    for row in rows:
        columns.extend(key for key, value in row.items() if key not in columns and is_scalar(value))
    return Table(columns, [[row.get(column) for column in columns] for row in rows])


def flat_figures(summary: dict[str, Any]) -> dict[str, Any]:
    """Every figure of a summary under one flat name, for putting runs side by side:
    the scalars, `before.X` / `after.X`, and a pipeline table's cells as `STAGE.X`."""
    flat = dict(scalar_figures(summary))
    for row in before_after(summary):
        flat[f"before.{row.metric}"] = row.before
        flat[f"after.{row.metric}"] = row.after
    table = stage_table(summary)
    if table is not None:
        for cells in table.rows:
            flat.update({f"{cells[0]}.{column}": cell for column, cell in zip(table.columns[1:], cells[1:])})
    return flat


def format_figure(value: Any) -> str:
    """A figure as a person reads it: 4 significant digits, thousands separated, yes/no, and a
    dash for a missing value."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0 or 1e-3 <= abs(value) < 1e4:
            return f"{value:.4g}"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.2e}"
    return str(value)


def format_change(value: float | None) -> str:
    return "" if value is None else ("+" if value > 0 else "") + format_figure(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
