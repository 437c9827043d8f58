"""The maze job's result as the page shows it: the learned Q table, the greedy policy's arrows with
the path picked out, and the verdict against value iteration. Built from q_table.npy and the
summary's `layout` and `greedy_path`, with the same drawing functions `r1lab maze` prints with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_TABLE_ROWS = 64  # larger mazes show the arrows only; the table stays in q_table.npy


@dataclass
class MazeCell:
    symbol: str  # an arrow, # (wall), E (end), or · (no preference yet)
    kind: str  # "wall", "end", "start" or "open": the cell's style
    on_path: bool


@dataclass
class MazeView:
    grid: list[list[MazeCell]]
    q_rows: list[tuple[str, list[tuple[float, bool]]]]  # (cell name, [(Q, is it the row's best)] per action)
    actions: tuple[str, ...]
    path: str
    verdict: str
    optimal: bool
    open_cells: int


def maze_view(summary: dict[str, Any], q: np.ndarray | None) -> MazeView | None:
    """The maze section, or None when the run has no Q table or no layout (not a maze run)."""
    grid = summary.get("layout")
    if q is None or not isinstance(grid, list) or not grid:
        return None
    from r1lab.envs.layouts import END, START, WALL, MazeLayout
    from r1lab.envs.maze import ACTIONS
    from r1lab.tabular.render import arrow_grid, path_text

    try:
        layout = MazeLayout(tuple(grid), "summary.json layout")
    except ValueError:
        return None
    if q.shape != (layout.cells, len(ACTIONS)):
        return None
    path = [n - 1 for n in summary.get("greedy_path") or []]
    on_path = set(path)
    symbols = [row.split(" ") for row in arrow_grid(q, layout, path).plain.split("\n")]
    kinds = {WALL: "wall", END: "end", START: "start"}
    cells = [[MazeCell(symbols[r][c], kinds.get(layout.char(r * layout.cols + c), "open"),
                       r * layout.cols + c in on_path) for c in range(layout.cols)] for r in range(layout.rows)]
    open_cells = [s for s in range(layout.cells) if layout.char(s) != WALL]
    q_rows = []
    if len(open_cells) <= MAX_TABLE_ROWS:
        for s in open_cells:
            label = f"S{s + 1}" + {START: " (S)", END: " (E)"}.get(layout.char(s), "")
            best = q[s].max() if layout.char(s) != END else None  # the end takes no action
            q_rows.append((label, [(float(v), v == best) for v in q[s]]))
    return MazeView(cells, q_rows, ACTIONS, path_text(path), verdict(summary), bool(summary.get("optimal")),
                    len(open_cells))


def verdict(summary: dict[str, Any]) -> str:
    length, best = summary.get("path_length"), summary.get("optimal_length")
    if summary.get("optimal"):
        return f"optimal: {length} moves, as value iteration's {best}"
    if summary.get("reached_goal"):
        return f"not optimal: {length} moves, value iteration needs {best}"
    return f"the greedy path never reaches the end (value iteration: {best} moves)"
