"""The seed's pictures of a learned policy, drawn with rich: the Q table, the arrow grid, the greedy path.

Every function returns a rich renderable or a string, so tests read them and the CLI prints them.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text

from r1lab.envs.layouts import END, START, WALL, MazeLayout, cell_name
from r1lab.envs.maze import ACTIONS, ARROWS, MOVES

NO_PREFERENCE = "·"


def q_table(q: np.ndarray, layout: MazeLayout, title: str = "Q table", digits: int = 3) -> Table:
    """The seed's Q table: one row per open cell (s1, s2, ...; walls omitted), columns up, down,
    left, right; each row's largest value (the greedy action) in bold."""
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for action in ACTIONS:
        table.add_column(action, justify="right")
    for s in range(layout.cells):
        char = layout.char(s)
        if char == WALL:
            continue
        label = f"s{s + 1}" + {START: " (S)", END: " (E)"}.get(char, "")
        best = q[s].max()
        table.add_row(label, *(f"[bold]{v:.{digits}f}[/]" if v == best and char != END else f"{v:.{digits}f}"
                               for v in q[s]))
    return table


def greedy_arrows(q: np.ndarray, layout: MazeLayout) -> list[str]:
    """One symbol per cell, row by row: # wall, E end, the greedy action's arrow (↑↓←→), or · where all
    four actions tie (the table holds no preference there yet)."""
    symbols = []
    for s in range(layout.cells):
        char = layout.char(s)
        if char in (WALL, END):
            symbols.append(char)
        elif np.all(q[s] == q[s, 0]):
            symbols.append(NO_PREFERENCE)
        else:
            symbols.append(ARROWS[int(np.argmax(q[s]))])
    return symbols


def arrow_grid(q: np.ndarray, layout: MazeLayout, path: list[int] | None = None) -> Text:
    """The grid of greedy arrows, cells on `path` in green showing the move the path took there (where
    best actions tie, other cells show the first of them).

    `.plain` is the bare picture, e.g. for the seed's maze after training, path S1 S2 S5 S6 S9:
        → ↓ #
        → ↓ ↓
        # → E
    """
    path = path or []
    on_path = set(path)
    symbols = greedy_arrows(q, layout)
    for here, there in zip(path, path[1:], strict=False):
        move = (there // layout.cols - here // layout.cols, there % layout.cols - here % layout.cols)
        if move in MOVES:
            symbols[here] = ARROWS[MOVES.index(move)]
    text = Text()
    for r in range(layout.rows):
        for c in range(layout.cols):
            s = r * layout.cols + c
            style = "bold green" if s in on_path else ("dim" if symbols[s] == WALL else "")
            text.append(symbols[s], style=style)
            if c < layout.cols - 1:
                text.append(" ")
        if r < layout.rows - 1:
            text.append("\n")
    return text


def path_text(path: list[int]) -> str:
    """The seed's names along a path of 0-based cells: "S1 → S4 → S5 → S8 → S9"."""
    return " → ".join(cell_name(s) for s in path)


def maze_report(run_dir, max_table_rows: int = 40) -> list:
    """What `r1lab maze` prints for a finished run: the Q table (for small mazes), the arrow grid,
    the greedy path and whether it is optimal against value iteration."""
    import json
    from pathlib import Path

    from r1lab.tabular.train import load_run

    _, env, q = load_run(run_dir)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    path = [n - 1 for n in summary["greedy_path"]]
    open_cells = int((~env.layout.walls).sum())
    parts: list = []
    if open_cells <= max_table_rows:
        parts.append(q_table(q, env.layout))
    else:
        parts.append(Text(f"Q table: {open_cells} open cells x 4 actions, in {Path(run_dir) / 'q_table.npy'}"))
    parts.append(Text("greedy policy (path in green)", style="bold"))
    parts.append(arrow_grid(q, env.layout, path))
    parts.append(Text("greedy path: ", style="bold") + Text(path_text(path)))
    length, best = summary["path_length"], summary["optimal_length"]
    if summary["optimal"]:
        verdict = Text(f"optimal: yes, {length} moves = value iteration's {best}", style="bold green")
    elif summary["reached_goal"]:
        verdict = Text(f"optimal: no, {length} moves > value iteration's {best}", style="bold yellow")
    else:
        verdict = Text(f"optimal: no, the greedy path never reaches the end (value iteration: {best} moves)",
                       style="bold red")
    parts.append(verdict)
    return parts
