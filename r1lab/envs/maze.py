"""The seed's maze (§2) as a Gymnasium environment, `r1lab/Maze-v0`.

    observation  the agent's cell index, row by row from 0: Discrete(rows * cols)
                 (the seed names cell i `S{i+1}`; renders and summaries use those names)
    action       0 up, 1 down, 2 left, 3 right: the columns of the seed's Q table
    reward       +1 for the move that reaches the end E (the episode terminates there);
                 -1 for a move into a wall or off the grid (the agent stays put);
                 0 otherwise; `step_cost` is subtracted from every move's reward
    truncation   after `max_steps` moves (default 4 x cells) the env itself reports truncated=True;
                 it is registered without a TimeLimit wrapper, so there is one limit, not two

The dynamics are deterministic, and the env exposes them whole (`transitions`, and `P` in the
toy-text format of FrozenLake) so that value iteration can compute the exact optimum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from r1lab.envs.layouts import MazeLayout, cell_name

ACTIONS = ("up", "down", "left", "right")
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))
ARROWS = "↑↓←→"
GOAL_REWARD, WALL_REWARD = 1.0, -1.0


@dataclass(frozen=True)
class MazeTransitions:
    """The maze's deterministic transition model, one row per cell and one column per action.

    next_state  (cells, 4) int64    the cell after taking action a in cell s
    reward      (cells, 4) float64  the reward of that move
    terminated  (cells, 4) bool     True when the move ends the episode (it reaches the end)
    is_open     (cells,)   bool     False for wall cells: they stay in the index space but are never
                                    occupied; their rows are inert (stay put, reward 0)
    The end cell's rows are inert too (stay put, reward 0, terminated): the episode is over there.
    """

    next_state: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    is_open: np.ndarray
    start: int
    end: int

    @property
    def states(self) -> int:
        return self.next_state.shape[0]


def maze_transitions(layout: MazeLayout, step_cost: float = 0.0) -> MazeTransitions:
    """Build P_next[s, a], R[s, a], T[s, a] from a layout (rewards as in the module docstring)."""
    cells = layout.cells
    next_state = np.repeat(np.arange(cells, dtype=np.int64)[:, None], 4, axis=1)
    reward = np.zeros((cells, 4), dtype=np.float64)
    terminated = np.zeros((cells, 4), dtype=bool)
    terminated[layout.end] = True
    is_open = ~layout.walls
    for s in np.flatnonzero(is_open):
        if s == layout.end:
            continue
        for a, move in enumerate(MOVES):
            target = layout.neighbour(int(s), move)
            if target is None:
                reward[s, a] = WALL_REWARD - step_cost
            else:
                next_state[s, a] = target
                reward[s, a] = (GOAL_REWARD if target == layout.end else 0.0) - step_cost
                terminated[s, a] = target == layout.end
    return MazeTransitions(next_state, reward, terminated, is_open, layout.start, layout.end)


def make_layout(layout: str | os.PathLike | MazeLayout | None = None, size: int | None = None,
                maze_seed: int = 0, openings: float = 0.1) -> MazeLayout:
    """The seed's maze (no arguments), a picture (`layout` text), a file (`layout` a Path) or a random maze (`size`)."""
    if layout is not None and size is not None:
        raise ValueError("give a maze layout or a random maze size, not both")
    if size is not None:
        return MazeLayout.random(size, maze_seed, openings)
    if layout is None:
        return MazeLayout.seed_maze()
    if isinstance(layout, MazeLayout):
        return layout
    if isinstance(layout, os.PathLike):
        return MazeLayout.from_file(Path(layout))
    return MazeLayout.from_text(layout)


class MazeEnv(gym.Env):
    """The maze environment; see the module docstring for spaces, rewards and truncation.

    `MazeEnv()` is the seed's 3x3 maze; `MazeEnv(layout="S.#\\n...\\n#.E")` any picture;
    `MazeEnv(layout=Path("maze.txt"))` a picture in a file; `MazeEnv(size=20, maze_seed=3)` a random
    maze with extra `openings` (a fraction of inner walls knocked out, so several paths exist).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, layout: str | os.PathLike | MazeLayout | None = None, size: int | None = None,
                 maze_seed: int = 0, openings: float = 0.1, step_cost: float = 0.0,
                 max_steps: int | None = None, render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported; use one of {self.metadata['render_modes']}")
        if step_cost < 0:
            raise ValueError(f"step_cost is subtracted from every move's reward and must be >= 0, got {step_cost}")
        self.layout = make_layout(layout, size, maze_seed, openings)
        self.step_cost = float(step_cost)
        self.max_steps = 4 * self.layout.cells if max_steps is None else int(max_steps)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.transitions = maze_transitions(self.layout, self.step_cost)
        self.observation_space = spaces.Discrete(self.layout.cells)
        self.action_space = spaces.Discrete(4)
        self.render_mode = render_mode
        self._next = self.transitions.next_state.tolist()  # python lists: cheaper per step than numpy indexing
        self._reward = self.transitions.reward.tolist()
        self._terminated = self.transitions.terminated.tolist()
        self.state = self.layout.start
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # the maze itself is deterministic; the seed only seeds np_random
        self.state = self.layout.start
        self.steps = 0
        return self.state, {"cell": cell_name(self.state)}

    def step(self, action):
        a = int(action)
        if not 0 <= a < 4:
            raise ValueError(f"action {action!r} is not in 0..3 (up, down, left, right)")
        s = self.state
        self.state = self._next[s][a]
        self.steps += 1
        terminated = self._terminated[s][a]
        truncated = not terminated and self.steps >= self.max_steps
        return self.state, self._reward[s][a], terminated, truncated, {"cell": cell_name(self.state)}

    def render(self) -> str | None:
        """The grid as text (S, E, #, .), with the agent drawn as A, under a line naming its cell."""
        if self.render_mode is None:
            gym.logger.warn("MazeEnv.render() called without a render_mode; use render_mode='ansi'")
            return None
        rows = [list(row) for row in self.layout.grid]
        r, c = self.layout.position(self.state)
        rows[r][c] = "A"
        return f"agent at {cell_name(self.state)} after {self.steps} moves\n" + "\n".join("".join(row) for row in rows) + "\n"

    @property
    def P(self) -> dict[int, dict[int, list[tuple[float, int, float, bool]]]]:
        """The transition model in Gymnasium's toy-text format: P[s][a] = [(1.0, next_state, reward, terminated)]."""
        t = self.transitions
        return {s: {a: [(1.0, int(t.next_state[s, a]), float(t.reward[s, a]), bool(t.terminated[s, a]))]
                    for a in range(4)} for s in range(t.states)}
