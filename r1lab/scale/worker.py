"""The one interface every sampling worker has, whether it runs in this process or as a Ray actor.

    set_weights(state, version)   take the learner's weights; `version` counts the learner's updates
    sample(request) -> Shard      sample this worker's share of a step with the weights it holds;
                                  the shard carries the version it was sampled with
    sample_with_weights(method, request, state, version)
                                  both in one call (how the Ray backend sends new weights)
    state() / restore(state)      what a restarted worker needs to redo its share exactly
    pid()                         the worker's process (the fault tests kill it)

The driver checks every shard's version against the learner's (`check_version`): a worker that
sampled with old weights is an error, never a silent slip (RLlib's broadcast is fire-and-forget;
here the version travels with the weights and comes back with the batch).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class StaleWeightsError(RuntimeError):
    """A worker's batch was sampled with weights older (or newer) than the learner's."""


class WorkerLostError(RuntimeError):
    """A worker died more often than `max_restarts` allows; its share could not be redone."""


@dataclass
class Shard:
    """One worker's share of a step: what it sampled, the weights version it sampled with, the state
    it ended in (what a restart restores before redoing its next share) and where its time went."""

    worker: int
    version: int | None
    data: Any
    state: Any = None
    seconds: dict[str, float] = field(default_factory=dict)


def check_version(shard: Shard, expected: int) -> None:
    if shard.version != expected:
        raise StaleWeightsError(f"worker {shard.worker} sampled with weights version {shard.version}, but the "
                                f"learner is at version {expected}: a stale batch is never trained on")


def worker_seed(seed: int, worker: int, *stream: int) -> int:
    """A 32-bit seed for (run seed, worker, step, round): independent streams per worker and step,
    the same ones however often a share is redone or a run resumed."""
    return int(np.random.SeedSequence([seed, worker, *stream]).generate_state(1)[0])


class Worker:
    """Base of the sampling workers: versioned weights, state, and the fault hook of the tests."""

    def __init__(self, index: int):
        self.index = index
        self.version: int | None = None
        self._fault: str | None = None

    def load_weights(self, state: Any) -> None:
        raise NotImplementedError

    def set_weights(self, state: Any, version: int) -> int:
        self.load_weights(state)
        self.version = version
        return version

    def sample(self, request: Any) -> Shard:
        raise NotImplementedError

    def sample_with_weights(self, method: str, request: Any, state: Any, version: int) -> Shard:
        """`set_weights(state, version)`, then `method(request)`: a new step's first call, in one round trip."""
        self.set_weights(state, version)
        return getattr(self, method)(request)

    def state(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        pass

    def pid(self) -> int:
        return os.getpid()

    def inject_fault(self, where: str) -> None:
        """Kill this process with SIGKILL when its next `sample` reaches `where` (tests only: a
        worker lost mid-step, at a point the test chooses)."""
        self._fault = where

    def _fault_point(self, where: str) -> None:
        if self._fault == where:
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(10)  # never reached: SIGKILL cannot be caught
