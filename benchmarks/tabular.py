"""Tabular RL figures, printed as JSON: Q-learning speed, episodes to an optimal greedy path, value-iteration time.

    python benchmarks/tabular.py            # about half a minute on one core

- updates_per_second: Bellman updates per second of `q_learning` on a random maze, measured with
  epsilon = 1 throughout (every episode runs to the step limit, so the figure is the hot loop's).
- episodes_to_optimal: with the job's defaults (alpha 0.5, gamma 0.9, q_init 1, epsilon 1 -> 0.05
  over half the default episodes), the first episode count after which the greedy path from the
  start is as short as value iteration's; checked every 5 episodes; median over 5 mazes.
- optimal_rate: share of 30 random mazes whose greedy path is optimal at the end of the default
  budget, for the optimistic start (q_init 1, the default) and the seed's zero table (q_init 0).
- value_iteration_seconds: time for exact V*, Q* to converge (tol 1e-12), median of 5.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

from r1lab.envs import MazeEnv
from r1lab.tabular import EpsilonSchedule, greedy_path, q_learning, shortest_path_length, value_iteration
from r1lab.tabular.train import default_episodes

ALPHA, GAMMA = 0.5, 0.9
CHECK_EVERY = 5


def updates_per_second(size: int, episodes: int = 200) -> float:
    env = MazeEnv(size=size, maze_seed=0)
    always_explore = EpsilonSchedule(1.0, 1.0, kind="constant")
    started = time.perf_counter()
    result = q_learning(env.transitions, episodes, ALPHA, GAMMA, always_explore, env.max_steps,
                        np.random.default_rng(0), q_init=1.0)
    return result.updates / (time.perf_counter() - started)


def episodes_to_optimal(size: int, maze_seed: int, q_init: float = 1.0) -> tuple[int | None, bool]:
    """(first episode count with an optimal greedy path or None, optimal at the end of the budget)."""
    env = MazeEnv(size=size, maze_seed=maze_seed)
    model, best = env.transitions, shortest_path_length(env.transitions)
    episodes = default_episodes(env)
    schedule = EpsilonSchedule(1.0, 0.05, episodes // 2)
    rng, q, first = np.random.default_rng(maze_seed), None, None
    optimal = False
    for done in range(0, episodes, CHECK_EVERY):
        q = q_learning(model, CHECK_EVERY, ALPHA, GAMMA, schedule, env.max_steps, rng, q=q, q_init=q_init,
                       first_episode=done).q
        path, reached = greedy_path(q, model, np.random.default_rng(0))
        optimal = reached and len(path) - 1 == best
        if optimal and first is None:
            first = done + CHECK_EVERY
    return first, optimal


def value_iteration_seconds(size: int) -> float:
    model = MazeEnv(size=size, maze_seed=0).transitions
    times = []
    for _ in range(5):
        started = time.perf_counter()
        value_iteration(model, GAMMA)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    started = time.perf_counter()
    report: dict = {"settings": {"alpha": ALPHA, "gamma": GAMMA, "epsilon": "1 -> 0.05 linear over half",
                                 "episodes": "max(200, 2 x open cells)", "openings": 0.1}}
    for size in (10, 20):
        firsts = [episodes_to_optimal(size, seed)[0] for seed in range(5)]
        known = [f for f in firsts if f is not None]
        env = MazeEnv(size=size, maze_seed=0)
        report[f"{size}x{size}"] = {
            "updates_per_second": round(updates_per_second(size)),
            "default_episodes_maze_seed_0": default_episodes(env),
            "episodes_to_optimal_per_maze": firsts,
            "episodes_to_optimal_median": statistics.median(known) if len(known) == len(firsts) else None,
            "optimal_rate_q_init_1": np.mean([episodes_to_optimal(size, 100 + k, 1.0)[1] for k in range(30)]).item(),
            "optimal_rate_q_init_0": np.mean([episodes_to_optimal(size, 100 + k, 0.0)[1] for k in range(30)]).item(),
            "value_iteration_seconds": round(value_iteration_seconds(size), 6),
        }
    report["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
