"""Value iteration: the exact V* and Q* of a maze from its transition model, the oracle for Q-learning.

Bellman optimality backup (seed §2.2.2's Bellman equation with the policy's average replaced by a max):

    Q_{k+1}(s, a) = R(s, a) + gamma * (1 - T(s, a)) * V_k(P(s, a))
    V_{k+1}(s)    = max_a Q_{k+1}(s, a)

P, R, T are the arrays of `MazeTransitions` (next state, reward, terminated). Iterating from V_0 = 0
converges to V* for gamma < 1 (a contraction) and, on a maze whose end is reachable, for gamma = 1
too. A greedy policy on Q* is optimal; with gamma < 1 (or a step cost) it takes a shortest path.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from r1lab.envs.maze import MazeTransitions


@dataclass
class ValueIterationResult:
    """v (states,) and q (states, 4) at convergence; wall cells hold 0. `iterations`: sweeps made."""

    v: np.ndarray
    q: np.ndarray
    iterations: int


def value_iteration(model: MazeTransitions, gamma: float, tol: float = 1e-12,
                    max_iterations: int = 100_000) -> ValueIterationResult:
    """Synchronous value iteration, one vectorised sweep over all (s, a) per iteration, until
    max_s |V_{k+1}(s) - V_k(s)| <= tol."""
    continues = gamma * (~model.terminated)
    v = np.zeros(model.states)
    sweeps, change = 0, np.inf
    while change > tol and sweeps < max_iterations:
        q = model.reward + continues * v[model.next_state]
        new_v = np.where(model.is_open, q.max(axis=1), 0.0)
        change = np.abs(new_v - v).max()
        v = new_v
        sweeps += 1
    q = np.where(model.is_open[:, None], model.reward + continues * v[model.next_state], 0.0)
    return ValueIterationResult(v, q, sweeps)


def shortest_path_length(model: MazeTransitions) -> int | None:
    """Fewest moves from start to end through the transition model (breadth-first search); None if unreachable."""
    distance = {model.start: 0}
    queue = deque([model.start])
    while queue:
        s = queue.popleft()
        for a in range(4):
            nxt = int(model.next_state[s, a])
            if model.terminated[s, a]:
                return distance[s] + 1
            if nxt not in distance:
                distance[nxt] = distance[s] + 1
                queue.append(nxt)
    return None
