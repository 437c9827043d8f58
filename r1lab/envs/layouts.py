"""Maze layouts: the seed's 3x3 grid, ASCII pictures, and random mazes from a randomized depth-first search.

A layout is a picture, one string per row, one character per cell:

    S   the start (exactly one)        #   a wall
    E   the end (exactly one)          .   an open cell

Cells are indexed row by row from 0 (the Gymnasium observation); the seed names them from 1,
so cell index i is the seed's `S{i+1}`:

    S1(S) S2 S3(W)          S.#
    S4    S5 S6       ==    ...
    S7(W) S8 S9(E)          #.E

This module is pure Python and numpy: it does not import gymnasium.
"""

from __future__ import annotations

import textwrap
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

START, END, WALL, OPEN = "S", "E", "#", "."
CELL_CHARS = START + END + WALL + OPEN

SEED_MAZE = """
S.#
...
#.E
"""


def cell_name(cell: int) -> str:
    """The seed's name for a 0-based cell index: 0 -> 'S1', 8 -> 'S9'."""
    return f"S{cell + 1}"


@dataclass(frozen=True)
class MazeLayout:
    """A checked maze picture. `grid` holds one string per row; `source` names where it came from
    (a file path, "the seed's maze", a random maze's size and seed) for error messages.

    Building one raises a single ValueError naming the first problem: ragged rows, an unknown
    character (row/col, 1-based), no start or more than one, no end or more than one, or an end
    that cannot be reached from the start.
    """

    grid: tuple[str, ...]
    source: str = "maze layout"

    def __post_init__(self) -> None:
        where = self.source
        if not self.grid:
            raise ValueError(f"{where}: the layout is empty; draw the maze with S, E, # and . (one row per line)")
        widths = [len(row) for row in self.grid]
        for r, width in enumerate(widths):
            if width != widths[0]:
                raise ValueError(f"{where}: ragged rows: row {r + 1} has {width} cells but row 1 has {widths[0]}; "
                                 "every row must be as wide as the first")
        for r, row in enumerate(self.grid):
            for c, char in enumerate(row):
                if char not in CELL_CHARS:
                    raise ValueError(f"{where}: unknown character {char!r} at row {r + 1}, col {c + 1}; "
                                     "use S (start), E (end), # (wall) or . (open)")
        for char, name in ((START, "start"), (END, "end")):
            count = sum(row.count(char) for row in self.grid)
            if count == 0:
                raise ValueError(f"{where}: the maze has no {name}; mark it with '{char}'")
            if count > 1:
                raise ValueError(f"{where}: the maze has {count} {name}s ('{char}'); it must have exactly one")
        if self.shortest_path_length is None:
            (sr, sc), (er, ec) = self.position(self.start), self.position(self.end)
            raise ValueError(f"{where}: the end E (row {er + 1}, col {ec + 1}) cannot be reached from the "
                             f"start S (row {sr + 1}, col {sc + 1}); open a path of '.' cells between them")

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, source: str = "maze layout") -> MazeLayout:
        """Parse a picture; surrounding blank lines, common indentation and trailing spaces are ignored."""
        lines = [line.rstrip() for line in textwrap.dedent(text.expandtabs(4)).splitlines()]
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        return cls(tuple(lines), source)

    @classmethod
    def from_file(cls, path: str | Path) -> MazeLayout:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such maze layout file")
        return cls.from_text(path.read_text(), source=str(path))

    @classmethod
    def seed_maze(cls) -> MazeLayout:
        """The seed's 3x3 maze: start S1, walls S3 and S7, end S9."""
        return cls.from_text(SEED_MAZE, source="the seed's maze")

    @classmethod
    def random(cls, size: int, maze_seed: int = 0, openings: float = 0.1) -> MazeLayout:
        """A random solvable `size` x `size` maze, start top-left, end bottom-right; see `random_maze_grid`."""
        return cls(random_maze_grid(size, maze_seed, openings),
                   source=f"random maze (size={size}, maze_seed={maze_seed}, openings={openings})")

    # ---- geometry ----------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return len(self.grid)

    @property
    def cols(self) -> int:
        return len(self.grid[0])

    @property
    def cells(self) -> int:
        return self.rows * self.cols

    def position(self, cell: int) -> tuple[int, int]:
        return divmod(cell, self.cols)

    def char(self, cell: int) -> str:
        r, c = self.position(cell)
        return self.grid[r][c]

    @cached_property
    def start(self) -> int:
        return "".join(self.grid).index(START)

    @cached_property
    def end(self) -> int:
        return "".join(self.grid).index(END)

    @cached_property
    def walls(self) -> np.ndarray:
        """Bool mask, shape (cells,): True where the cell is a wall."""
        return np.array([ch == WALL for ch in "".join(self.grid)], dtype=bool)

    @property
    def text(self) -> str:
        return "\n".join(self.grid)

    def neighbour(self, cell: int, move: tuple[int, int]) -> int | None:
        """The open cell one `move` = (d_row, d_col) away, or None for a wall or the grid's edge."""
        r, c = self.position(cell)
        nr, nc = r + move[0], c + move[1]
        if 0 <= nr < self.rows and 0 <= nc < self.cols and self.grid[nr][nc] != WALL:
            return nr * self.cols + nc
        return None

    @cached_property
    def shortest_path_length(self) -> int | None:
        """Fewest moves from start to end (breadth-first search), or None when the end is unreachable."""
        distance = {self.start: 0}
        queue = deque([self.start])
        while queue:
            cell = queue.popleft()
            if cell == self.end:
                return distance[cell]
            for move in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                nxt = self.neighbour(cell, move)
                if nxt is not None and nxt not in distance:
                    distance[nxt] = distance[cell] + 1
                    queue.append(nxt)
        return None


def random_maze_grid(size: int, maze_seed: int = 0, openings: float = 0.1) -> tuple[str, ...]:
    """A `size` x `size` maze picture, deterministic from `maze_seed`.

    1. Rooms sit on the even (row, col) coordinates; a randomized depth-first search (the
       recursive backtracker) walks from room (0, 0), knocking out the wall cell between a room
       and a random unvisited neighbouring room, backtracking at dead ends. This carves a
       perfect maze: exactly one path between any two rooms.
    2. A fraction `openings` of the remaining walls that separate two rooms is knocked out,
       adding loops, so several paths of different lengths lead to the end and the shortest
       one has to be found, not just any one.
    3. For an even `size` the last row and column hold no rooms: each room beside them gets a
       dead-end stub into them with probability 1/2, and the end cell is joined to the
       bottom-right room.

    The start is the top-left cell and the end the bottom-right cell; the end is always reachable.
    """
    if size < 2:
        raise ValueError(f"a random maze needs size >= 2, got {size}")
    if not 0.0 <= openings <= 1.0:
        raise ValueError(f"openings is the fraction of inner walls to open, in [0, 1]; got {openings}")
    rng = np.random.default_rng(maze_seed)
    grid = [[WALL] * size for _ in range(size)]
    grid[0][0] = OPEN
    stack = [(0, 0)]
    while stack:
        r, c = stack[-1]
        unvisited = [(r + dr, c + dc) for dr, dc in ((-2, 0), (2, 0), (0, -2), (0, 2))
                     if 0 <= r + dr < size and 0 <= c + dc < size and grid[r + dr][c + dc] == WALL]
        if not unvisited:
            stack.pop()
            continue
        nr, nc = unvisited[rng.integers(len(unvisited))]
        grid[(r + nr) // 2][(c + nc) // 2] = OPEN
        grid[nr][nc] = OPEN
        stack.append((nr, nc))

    between_rooms = [(r, c) for r in range(size) for c in range(size) if grid[r][c] == WALL and (
        (r % 2 == 0 and c % 2 == 1 and c + 1 < size) or (r % 2 == 1 and c % 2 == 0 and r + 1 < size))]
    count = round(openings * len(between_rooms))
    for i in rng.choice(len(between_rooms), size=count, replace=False) if count else []:
        r, c = between_rooms[i]
        grid[r][c] = OPEN

    last = size - 1
    if size % 2 == 0:
        for k in range(0, last, 2):
            if rng.random() < 0.5:
                grid[k][last] = OPEN
            if rng.random() < 0.5:
                grid[last][k] = OPEN
        grid[last - 1][last] = OPEN
    grid[0][0] = START
    grid[last][last] = END
    return tuple("".join(row) for row in grid)
