"""Q-learning (seed §2.2): a Q table, epsilon-greedy actions and the Bellman update.

    1. initialise the Q table, shape (states, 4), to 0
    2. repeat, from the start cell:
         a      = argmax_a Q(s, a)  (or, with probability epsilon, a random action)
         s', r  = Environment(s, a)
         Q(s,a) <- Q(s,a) + alpha [r + gamma max_a' Q(s',a') - Q(s,a)]

The target is r alone when the move terminates the episode (there is no s' to bootstrap from);
an episode cut by the step limit is not terminated, so its last move still bootstraps.

The maze is deterministic, so the learner steps its transition table (`MazeTransitions`): the
same numbers `MazeEnv.step` returns, looked up without the wrapper stack of `gym.make`. The hot
loop runs on Python lists and a buffer of uniforms drawn in blocks from one seeded numpy
Generator, which is what makes it fast (over a million updates per second on one core).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from r1lab.envs.maze import MazeTransitions
from r1lab.tabular.schedules import EpsilonSchedule

TieBreak = Literal["random", "first"]
UNIFORM_BLOCK = 4096


@dataclass
class QLearningResult:
    """The learned table and one entry per episode.

    q                (states, 4) float64  the Q table
    episode_return   (episodes,) float64  sum of rewards (undiscounted)
    episode_length   (episodes,) int64    moves taken
    reached_goal     (episodes,) bool     the episode terminated at the end cell
    epsilon          (episodes,) float64  the exploration rate it ran with
    updates          int                  Bellman updates made (= total moves)
    """

    q: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray
    reached_goal: np.ndarray
    epsilon: np.ndarray
    updates: int


def q_learning(model: MazeTransitions, episodes: int, alpha: float, gamma: float, epsilon: EpsilonSchedule,
               max_steps: int, rng: np.random.Generator, q: np.ndarray | None = None, q_init: float = 0.0,
               tie_break: TieBreak = "random", first_episode: int = 0) -> QLearningResult:
    """Run `episodes` episodes of Q-learning from `model.start`; returns the table and per-episode figures.

    A new table starts at `q_init` (the seed's 0; 1, the largest return the maze pays, is optimistic:
    every untried action looks better than anything learned, so even greedy moves explore) in the
    rows of cells the agent can act from; wall rows and the end's row stay 0, as in Q*.
    `q` continues from an existing table (a copy is updated); `first_episode` offsets the epsilon
    schedule, so training in chunks follows the same schedule as one long run. Greedy actions
    break ties between equal Q values uniformly at random (`tie_break="random"`, the seed's
    "the solution is not unique") or always pick the first action in up, down, left, right order
    (`"first"`, what a bare `np.argmax` does; see docs/maze.md for why that matters).
    """
    table = (initial_q_table(model, q_init) if q is None else np.asarray(q, dtype=np.float64)).tolist()
    next_state, reward, terminated = model.next_state.tolist(), model.reward.tolist(), model.terminated.tolist()
    start, random_ties = model.start, tie_break == "random"
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    reached = np.zeros(episodes, dtype=bool)
    epsilons = np.array([epsilon(first_episode + e) for e in range(episodes)], dtype=np.float64)
    uniforms, used = rng.random(UNIFORM_BLOCK).tolist(), 0

    for episode in range(episodes):
        explore = epsilons[episode].item()
        s, total, moves, done = start, 0.0, 0, False
        while moves < max_steps and not done:
            row = table[s]
            if used >= UNIFORM_BLOCK - 2:  # each move draws at most two uniforms
                uniforms, used = rng.random(UNIFORM_BLOCK).tolist(), 0
            if explore > 0.0 and uniforms[used] < explore:
                a = int(uniforms[used + 1] * 4)
                used += 2
            else:
                if explore > 0.0:
                    used += 1
                best = max(row)
                if random_ties and row.count(best) > 1:
                    ties = [i for i in range(4) if row[i] == best]
                    a = ties[int(uniforms[used] * len(ties))]
                    used += 1
                else:
                    a = row.index(best)
            s_next, r, done = next_state[s][a], reward[s][a], terminated[s][a]
            target = r if done else r + gamma * max(table[s_next])
            row[a] += alpha * (target - row[a])
            total += r
            moves += 1
            s = s_next
        returns[episode], lengths[episode], reached[episode] = total, moves, done

    return QLearningResult(np.array(table, dtype=np.float64), returns, lengths, reached, epsilons,
                           int(lengths.sum()))


def initial_q_table(model: MazeTransitions, q_init: float = 0.0) -> np.ndarray:
    """A (states, 4) float64 table: `q_init` where the agent can act, 0 on walls and at the end."""
    q = np.zeros((model.states, 4))
    actable = model.is_open.copy()
    actable[model.end] = False
    q[actable] = q_init
    return q


def greedy_action(q_row: np.ndarray, rng: np.random.Generator | None = None) -> int:
    """argmax_a Q(s, a), ties broken uniformly at random by `rng` (or the first action when rng is None)."""
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0] if rng is None or len(best) == 1 else rng.choice(best))


def greedy_path(q: np.ndarray, model: MazeTransitions, rng: np.random.Generator | None = None,
                max_moves: int | None = None) -> tuple[list[int], bool]:
    """Follow the greedy policy from the start: (cells visited, 0-based, start first; reached the end).

    Stops at the end cell or after `max_moves` moves (default: the number of cells, more than any
    shortest path needs), so a policy that loops (S1 -> S4 -> S1 ...) returns reached=False.
    """
    limit = model.states if max_moves is None else max_moves
    path, s = [model.start], model.start
    for _ in range(limit):
        a = greedy_action(q[s], rng)
        done = bool(model.terminated[s, a])
        s = int(model.next_state[s, a])
        path.append(s)
        if done:
            return path, True
    return path, False
