"""`r1lab maze`: train Q-learning on a maze and check its greedy path against value iteration.

The job, in the order of the five-step loop (docs/design.md): build the maze and its transition model; run Q-learning
in chunks (collect, score and improve are one Bellman update per move); record per-episode figures,
the Q table and a summary that compares the greedy path with the exact optimum.

    RUN_DIR/config.yaml    the resolved QLearningConfig
    RUN_DIR/metrics.jsonl  episode_return, episode_length, epsilon, reached_goal (means over each logged block)
    RUN_DIR/q_table.npy    the learned Q table, shape (cells, 4), float64
    RUN_DIR/summary.json   greedy_path (the seed's cell numbers, from 1), path_length, optimal_length,
                           reached_goal, optimal, episodes, wall_seconds, updates_per_second, ...
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from r1lab.envs.maze import MazeEnv
from r1lab.runs import ProgressBar, Run, build, read_config_file, require
from r1lab.tabular.q_learning import greedy_path, q_learning
from r1lab.tabular.schedules import EpsilonSchedule
from r1lab.tabular.value_iteration import shortest_path_length, value_iteration

PROGRESS_CHUNKS = 20
MAX_LOG_LINES = 500


@dataclass
class QLearningConfig:
    """Q-learning on a maze. The maze: the seed's 3x3 grid by default; `layout` a picture file (or the
    picture itself, when it spans several lines); `size` a random size x size maze from `maze_seed`.

    episodes   None: max(200, 2 x open cells), enough for random mazes up to 20x20 and beyond
    alpha      learning rate in Q(s,a) <- Q(s,a) + alpha [r + gamma max_a' Q(s',a') - Q(s,a)]
    gamma      discount; below 1 so that a shorter path is worth more
    q_init     the table's starting value: 1 is optimistic (docs/maze.md); the seed's 0 explores
               less well on large mazes
    tie_break  how a greedy move picks between equal Q values: "random" or "first" (np.argmax's)
    max_steps  moves before an episode is truncated; None: 4 x cells
    log_every  episodes per metrics line; None: every episode, or ~500 lines for long runs
    """

    layout: str | None = None
    size: int | None = None
    maze_seed: int = 0
    openings: float = 0.1
    step_cost: float = 0.0
    max_steps: int | None = None
    episodes: int | None = None
    alpha: float = 0.5
    gamma: float = 0.9
    epsilon: EpsilonSchedule = field(default_factory=EpsilonSchedule)
    q_init: float = 1.0
    tie_break: Literal["random", "first"] = "random"
    seed: int = 0
    log_every: int | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        require(self.layout is None or self.size is None, "size", "cannot be combined with 'layout': "
                "give a layout file or a random maze size")
        require(self.size is None or self.size >= 2, "size", f"must be >= 2, got {self.size}")
        require(0.0 <= self.openings <= 1.0, "openings", f"must be in [0, 1], got {self.openings}")
        require(self.step_cost >= 0, "step_cost", f"must be >= 0, got {self.step_cost}")
        require(self.max_steps is None or self.max_steps >= 1, "max_steps", f"must be >= 1, got {self.max_steps}")
        require(self.episodes is None or self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        require(0.0 < self.alpha <= 1.0, "alpha", f"must be in (0, 1], got {self.alpha}")
        require(0.0 <= self.gamma <= 1.0, "gamma", f"must be in [0, 1], got {self.gamma}")
        require(self.log_every is None or self.log_every >= 1, "log_every", f"must be >= 1, got {self.log_every}")


def make_maze(config: QLearningConfig) -> MazeEnv:
    """The config's maze as an env; a layout file's problems are reported against the file."""
    layout = config.layout
    if layout is not None and "\n" not in layout:
        layout = Path(layout)
    return MazeEnv(layout=layout, size=config.size, maze_seed=config.maze_seed, openings=config.openings,
                   step_cost=config.step_cost, max_steps=config.max_steps)


def default_episodes(env: MazeEnv) -> int:
    return max(200, 2 * int(env.transitions.is_open.sum()))


def train_maze(config: QLearningConfig, run_dir: str | Path, quiet: bool = False) -> dict:
    """Train, log and save one run; returns the summary also written to RUN_DIR/summary.json."""
    env = make_maze(config)
    model = env.transitions
    episodes = config.episodes or default_episodes(env)
    schedule = config.epsilon.for_episodes(episodes)
    config = replace(config, episodes=episodes, epsilon=schedule)
    rng = np.random.default_rng(config.seed)  # the run's only source of randomness

    with Run(run_dir, "maze", config, tensorboard=config.tensorboard) as run:
        chunk = -(-episodes // PROGRESS_CHUNKS)
        q, parts, train_seconds = None, [], 0.0
        with ProgressBar(episodes, "q-learning", enabled=not quiet) as bar:
            for first in range(0, episodes, chunk):
                started = time.perf_counter()
                part = q_learning(model, min(chunk, episodes - first), config.alpha, config.gamma, schedule,
                                  env.max_steps, rng, q=q, q_init=config.q_init, tie_break=config.tie_break,
                                  first_episode=first)
                train_seconds += time.perf_counter() - started
                q = part.q
                parts.append(part)
                bar.advance(len(part.episode_length), info=f"goal rate {part.reached_goal.mean():.2f}")

        returns, lengths, reached, epsilons = (np.concatenate([getattr(p, key) for p in parts]) for key in
                                               ("episode_return", "episode_length", "reached_goal", "epsilon"))
        log_every = config.log_every or max(1, -(-episodes // MAX_LOG_LINES))
        for start in range(0, episodes, log_every):
            block = slice(start, start + log_every)
            run.log(min(start + log_every, episodes), {
                "episode_return": returns[block].mean(), "episode_length": lengths[block].mean(),
                "epsilon": epsilons[block].mean(), "reached_goal": reached[block].mean()})

        save_npy_atomic(run.dir / "q_table.npy", q)
        optimum = value_iteration(model, config.gamma)
        optimal_length = shortest_path_length(model)
        ties = np.random.default_rng(config.seed) if config.tie_break == "random" else None
        path, reached_goal = greedy_path(q, model, ties)
        updates = int(lengths.sum())
        summary = {
            "maze": env.layout.source,
            "layout": list(env.layout.grid),
            "greedy_path": [s + 1 for s in path],
            "path_length": len(path) - 1,
            "optimal_length": optimal_length,
            "reached_goal": reached_goal,
            "optimal": bool(reached_goal and len(path) - 1 == optimal_length),
            "episodes": episodes,
            "first_goal_episode": int(np.argmax(reached)) + 1 if reached.any() else None,
            "goal_rate_last_10pct": float(reached[-max(1, episodes // 10):].mean()),
            "final_epsilon": float(epsilons[-1]),
            "updates": updates,
            "train_seconds": train_seconds,
            "updates_per_second": updates / train_seconds if train_seconds > 0 else float("inf"),
            "value_error_on_path": float(np.abs(q.max(axis=1) - optimum.v)[path[:-1]].max(initial=0.0)),
            "value_iteration_sweeps": optimum.iterations,
            "wall_seconds": run.elapsed,
        }
        run.write_summary(summary)
    return summary


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """np.save beside the destination, then rename: a crash never leaves half a table."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npy")
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def load_run(run_dir: str | Path) -> tuple[QLearningConfig, MazeEnv, np.ndarray]:
    """A finished run's config, maze and Q table (what `maze_report` draws)."""
    config = build(QLearningConfig, read_config_file(run_dir), f"{run_dir}/config.yaml")
    return config, make_maze(config), np.load(Path(run_dir) / "q_table.npy")
