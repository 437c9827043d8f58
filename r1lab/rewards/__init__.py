"""Rule rewards (accuracy, format, countdown, language consistency, code in a sandbox), answer parsing,
and the contained weighted runner."""

from __future__ import annotations

import importlib
import os
import sys

from r1lab.rewards.code import code_reward, extract_code
from r1lab.rewards.language import (
    language_consistency,
    language_consistency_reward,
    language_word_counts,
    mixes_languages,
    reasoning_text,
)
from r1lab.rewards.parsing import (
    answer_in_boxed,
    answer_in_summary,
    answer_in_tags,
    extract_answer,
    follows_r1_format,
    follows_soft_format,
    follows_strict_format,
    last_number,
    summary_text,
    tag_count_score,
)
from r1lab.rewards.rules import (
    accuracy_reward,
    answers_match,
    countdown_reward,
    format_reward,
    r1_format_reward,
    soft_format_reward,
    tag_count_reward,
)
from r1lab.rewards.runner import RewardFunction, RewardFunctionError, score, scorer

REWARDS = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "r1_format": r1_format_reward,
    "soft_format": soft_format_reward,
    "tag_count": tag_count_reward,
    "countdown": countdown_reward,
    "language_consistency": language_consistency_reward,
    "code": code_reward,
}
# where each built-in runs: the rules that are linear in the completion run in a thread; accuracy
# may hand an answer such as 9**9**9**9 to sympy, which computes it in C, so it gets a killable
# process; the code reward only waits on sandboxed subprocesses, each killed at its own limit
PROCESS_ISOLATED = frozenset({"accuracy"})
OWN_TIME_LIMIT = frozenset({"code"})


def reward_functions(names: list[str], weights: list[float] | None = None, timeout: float = 10.0) -> list[RewardFunction]:
    """Reward functions by name, each with its weight (default 1), time limit and isolation.

    A name is a built-in (`REWARDS`) or `module:function`, a function of yours with the same
    signature; yours run in a worker process (isolation "process"), killed at the time limit.
    """
    unknown = [name for name in names if name not in REWARDS and ":" not in name]
    if unknown:
        raise ValueError(f"unknown reward {', '.join(map(repr, unknown))}; rewards: {', '.join(REWARDS)}, "
                         "or module:function")
    weights = list(weights) if weights else [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(f"{len(weights)} reward weights for {len(names)} rewards ({', '.join(names)})")
    functions = []
    for name, weight in zip(names, weights):
        if name not in REWARDS:
            functions.append(RewardFunction(name, load_reward_function(name), weight, timeout, "process"))
        else:
            functions.append(RewardFunction(name, REWARDS[name], weight, None if name in OWN_TIME_LIMIT else timeout,
                                            "process" if name in PROCESS_ISOLATED else "thread"))
    return functions


def load_reward_function(spec: str):
    """The function `module:function` names; the module is looked for on sys.path, then in the current directory."""
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name or os.getcwd() in sys.path:
            raise ValueError(f"reward {spec!r}: cannot import {module_name!r}: {error}") from None
        sys.path.append(os.getcwd())  # a rewards.py beside the command, as with `python -m`; workers inherit it
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as again:
            raise ValueError(f"reward {spec!r}: cannot import {module_name!r}: {again}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"reward {spec!r}: {module_name} has no function {attribute!r}")
    return function


__all__ = [
    "REWARDS", "RewardFunction", "RewardFunctionError", "accuracy_reward", "answer_in_boxed", "answer_in_summary",
    "answer_in_tags", "answers_match", "code_reward", "countdown_reward", "extract_answer", "extract_code",
    "follows_r1_format", "follows_soft_format", "follows_strict_format", "format_reward", "language_consistency",
    "language_consistency_reward", "language_word_counts", "last_number", "load_reward_function", "mixes_languages",
    "r1_format_reward", "reasoning_text", "reward_functions", "score", "scorer", "soft_format_reward", "summary_text",
    "tag_count_reward", "tag_count_score",
]
