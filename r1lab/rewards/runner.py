"""Weighted reward functions, run so that one that raises or hangs never stops training.

A function is first called on the whole batch. If that call raises or runs past its time limit,
the batch is scored again sample by sample: every sample whose call raises or times out scores
0 and is counted in the metrics, and the first failure of each function is logged with its
traceback. Returning the wrong number of values is a bug in the function, not in a sample: it
stops the run with the function's name.

Where a call runs is the function's `isolation`:

- "thread" (the built-in rules that are linear in the completion's length): a daemon thread of
  its own. Python cannot kill a thread, so a call that hangs is abandoned: it holds no worker
  that later calls wait for, and it does not keep the process alive at exit. But one that holds
  the GIL (a regex or big-integer loop in C) stalls the whole process, its limit or not;
- "process" (functions that may be slow or are not ours: user functions, math-verify's sympy):
  a warm worker process (`worker.py`), killed at the limit and replaced, so the limit is real.

A batch whose every sample hangs costs one time limit per sample.
"""

from __future__ import annotations

import logging
import math
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from r1lab.rewards.worker import RewardWorker, RewardWorkerTimeout, check_importable

logger = logging.getLogger("r1lab.rewards")


class RewardFunctionError(ValueError):
    """A reward function broke its contract (wrong number of values); names the function."""


class RewardTimeout(TimeoutError):
    """A reward function ran past its time limit."""


ISOLATIONS = ("thread", "process")


@dataclass
class RewardFunction:
    """A reward function with its weight, time limit (None: none) and where it runs (`isolation`)."""

    name: str
    function: Callable
    weight: float = 1.0
    timeout: float | None = 10.0
    isolation: str = "thread"
    failures: int = 0
    _logged: bool = field(default=False, repr=False)
    _worker: RewardWorker | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"reward function '{self.name}': isolation must be one of {', '.join(ISOLATIONS)}, "
                             f"not {self.isolation!r}")
        if self.isolation == "process":
            try:
                check_importable(self.function)
            except TypeError as error:
                raise TypeError(f"reward function '{self.name}' runs in a worker process, so it must be a "
                                f"module-level function of an importable module: {error}") from error
            self._worker = RewardWorker(self.name)

    def close(self) -> None:
        """Stop the worker process, if there is one (it also ends when the training process does)."""
        if self._worker is not None:
            self._worker.close()

    def __call__(self, prompts: list[str], completions: list[str], fields: dict[str, list]) -> list[float | None]:
        try:
            values = self._call_with_timeout(prompts, completions, fields)
        except Exception as error:
            if len(completions) == 1:  # the batch was the sample: calling it again would fail again
                self.failures += 1
                self._log_failure(error)
                return [0.0]
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
        if self._worker is not None:
            return self._worker.call(self.function, prompts, completions, fields, self.timeout)
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
            detail = (f"{error}\n" if isinstance(error, (RewardTimeout, RewardWorkerTimeout))
                      else "".join(traceback.format_exception(error)))
            logger.warning("reward function '%s' failed (scored 0; counted in reward_failures/%s):\n%s",
                           self.name, self.name, detail)


def score(functions: list[RewardFunction], prompts: list[str], completions: list[str],
          fields: dict[str, list]) -> tuple[list[float], dict[str, float], dict[str, list[float | None]]]:
    """Total reward per completion (weighted sum; None counts 0), per-function metrics, and each
    function's own values per completion (for the completions table)."""
    totals = [0.0] * len(completions)
    metrics: dict[str, float] = {}
    by_function: dict[str, list[float | None]] = {}
    for function in functions:
        before = function.failures
        values = function(prompts, completions, fields)
        by_function[function.name] = values
        applicable = [v for v in values if v is not None]
        for i, value in enumerate(values):
            if value is not None:
                totals[i] += function.weight * value
        if applicable:
            mean = sum(applicable) / len(applicable)
            metrics[f"rewards/{function.name}/mean"] = mean
            metrics[f"rewards/{function.name}/std"] = math.sqrt(sum((v - mean) ** 2 for v in applicable) / len(applicable))
        metrics[f"reward_failures/{function.name}"] = function.failures - before
    return totals, metrics, by_function


def scorer(functions: list[RewardFunction]):
    """`score` bound to these functions: the `score_completions` callable trainers take."""

    def score_completions(prompts: list[str], completions: list[str], fields: dict[str, list]):
        return score(functions, prompts, completions, fields)

    return score_completions
