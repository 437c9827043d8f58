"""Epsilon schedules for epsilon-greedy exploration (seed §2.2.1).

    phi(s) = pi(s) = argmax_a Q(s, a)   with probability 1 - epsilon
             a random action            with probability epsilon

"To help Q-learning converge, lower epsilon step by step during training": explore widely while
the Q table knows nothing, then exploit what it has learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from r1lab.runs.config import require


@dataclass(frozen=True)
class EpsilonSchedule:
    """epsilon as a pure function of the episode number e (from 0):

        constant     epsilon_e = start
        linear       epsilon_e = start + (end - start) * min(1, e / decay_episodes)
        exponential  epsilon_e = max(end, start * (end / start) ** (e / decay_episodes))

    Both decays reach `end` at episode `decay_episodes` and stay there. `decay_episodes=None`
    means half of the run's episodes (resolved by `for_episodes`). A schedule never rises: an `end`
    above `start` is read as `start`, so `start=0` is pure exploitation whatever `end` says.
    """

    start: float = 1.0
    end: float = 0.05
    decay_episodes: int | None = None
    kind: Literal["constant", "linear", "exponential"] = "linear"

    def __post_init__(self) -> None:
        require(0.0 <= self.start <= 1.0, "epsilon.start", f"must be in [0, 1], got {self.start}")
        require(0.0 <= self.end <= 1.0, "epsilon.end", f"must be in [0, 1], got {self.end}")
        require(self.decay_episodes is None or self.decay_episodes >= 1, "epsilon.decay_episodes",
                f"must be >= 1, got {self.decay_episodes}")
        require(self.kind != "exponential" or self.end > 0 or self.start == 0, "epsilon.end",
                "must be > 0 for an exponential schedule (a geometric decay never reaches 0)")

    def for_episodes(self, episodes: int) -> EpsilonSchedule:
        """This schedule with `decay_episodes` filled in (half of `episodes`) if it was left open."""
        if self.decay_episodes is not None:
            return self
        return EpsilonSchedule(self.start, self.end, max(1, episodes // 2), self.kind)

    def __call__(self, episode: int) -> float:
        end = min(self.end, self.start)
        if self.kind == "constant" or self.start == end:
            return self.start
        if self.decay_episodes is None:
            raise ValueError("epsilon.decay_episodes is not set; call for_episodes(episodes) first")
        progress = min(1.0, episode / self.decay_episodes)
        if self.kind == "linear":
            return self.start + (end - self.start) * progress
        return max(end, self.start * (end / self.start) ** progress)
