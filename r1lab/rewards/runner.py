"""Weighted reward functions, run so that one that raises or hangs never stops training.

A function is first called on the whole batch. If that call raises or runs past its time limit,
the batch is scored again sample by sample: every sample whose call raises or times out scores
0 and is counted in the metrics, and the first failure of each function is logged with its
traceback. Returning the wrong number of values is a bug in the function, not in a sample: it
stops the run with the function's name.

Each call runs in a daemon thread of its own. Python cannot kill a thread, so a call that hangs
is abandoned: it holds no worker that later calls wait for (as a fixed pool's would once all its
workers hang), and it does not keep the process alive at exit. A batch whose every sample hangs
costs one time limit per sample.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("r1lab.rewards")


class RewardFunctionError(ValueError):
    """A reward function broke its contract (wrong number of values); names the function."""


class RewardTimeout(TimeoutError):
    """A reward function ran past its time limit."""


@dataclass
class RewardFunction:
    name: str
    function: Callable
    weight: float = 1.0
    timeout: float = 10.0
    failures: int = 0
    _logged: bool = field(default=False, repr=False)

    def __call__(self, prompts: list[str], completions: list[str], fields: dict[str, list]) -> list[float | None]:
        try:
            values = self._call_with_timeout(prompts, completions, fields)
        except Exception as error:
            self._log_failure(error)
            return [self._one(prompts[i], completions[i], {k: [v[i]] for k, v in fields.items()})
                    for i in range(len(completions))]
        return self._checked(values, len(completions))

    def _one(self, prompt: str, completion: str, fields: dict[str, list]) -> float | None:
        try:
            return self._checked(self._call_with_timeout([prompt], [completion], fields), 1)[0]
        except RewardFunctionError:
            raise
        except Exception as error:
            self.failures += 1
            self._log_failure(error)
            return 0.0

    def _call_with_timeout(self, prompts, completions, fields):
        outcome: dict = {}

        def call():
            try:
                outcome["values"] = self.function(prompts, completions, **fields)
            except BaseException as error:  # handed to the caller's thread, which decides
                outcome["error"] = error

        thread = threading.Thread(target=call, name=f"reward-{self.name}", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            raise RewardTimeout(f"ran past its {self.timeout}s limit")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["values"]

    def _checked(self, values, expected: int) -> list[float | None]:
        values = list(values)
        if len(values) != expected:
            raise RewardFunctionError(
                f"reward function '{self.name}' returned {len(values)} values for a batch of {expected}")
        return [None if v is None else float(v) for v in values]

    def _log_failure(self, error: BaseException) -> None:
        if not self._logged:
            self._logged = True
            detail = (f"ran past its {self.timeout}s limit\n" if isinstance(error, RewardTimeout)
                      else "".join(traceback.format_exception(error)))
            logger.warning("reward function '%s' failed (scored 0; counted in reward_failures/%s):\n%s",
                           self.name, self.name, detail)


def score(functions: list[RewardFunction], prompts: list[str], completions: list[str],
          fields: dict[str, list]) -> tuple[list[float], dict[str, float]]:
    """Total reward per completion (weighted sum; None counts 0) and per-function metrics."""
    totals = [0.0] * len(completions)
    metrics: dict[str, float] = {}
    for function in functions:
        before = function.failures
        values = function(prompts, completions, fields)
        applicable = [v for v in values if v is not None]
        for i, value in enumerate(values):
            if value is not None:
                totals[i] += function.weight * value
        if applicable:
            mean = sum(applicable) / len(applicable)
            metrics[f"rewards/{function.name}/mean"] = mean
            metrics[f"rewards/{function.name}/std"] = math.sqrt(sum((v - mean) ** 2 for v in applicable) / len(applicable))
        metrics[f"reward_failures/{function.name}"] = function.failures - before
    return totals, metrics


def scorer(functions: list[RewardFunction]):
    """`score` bound to these functions: the `score_completions` callable trainers take."""

    def score_completions(prompts: list[str], completions: list[str], fields: dict[str, list]):
        return score(functions, prompts, completions, fields)

    return score_completions
