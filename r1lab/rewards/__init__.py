"""Rule rewards (accuracy, format, countdown, language consistency, code in a sandbox), answer parsing,
and the contained weighted runner."""

from __future__ import annotations

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
    answer_in_tags,
    extract_answer,
    follows_soft_format,
    follows_strict_format,
    last_number,
    tag_count_score,
)
from r1lab.rewards.rules import (
    accuracy_reward,
    answers_match,
    countdown_reward,
    format_reward,
    soft_format_reward,
    tag_count_reward,
)
from r1lab.rewards.runner import RewardFunction, RewardFunctionError, score, scorer

REWARDS = {
    "accuracy": accuracy_reward,
    "format": format_reward,
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
    """Built-in reward functions by name, each with its weight (default 1), time limit and isolation."""
    unknown = [name for name in names if name not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward {', '.join(map(repr, unknown))}; rewards: {', '.join(REWARDS)}")
    weights = list(weights) if weights else [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(f"{len(weights)} reward weights for {len(names)} rewards ({', '.join(names)})")
    return [RewardFunction(name, REWARDS[name], weight, None if name in OWN_TIME_LIMIT else timeout,
                           "process" if name in PROCESS_ISOLATED else "thread")
            for name, weight in zip(names, weights)]


__all__ = [
    "REWARDS", "RewardFunction", "RewardFunctionError", "accuracy_reward", "answer_in_boxed", "answer_in_tags",
    "answers_match", "code_reward", "countdown_reward", "extract_answer", "extract_code", "follows_soft_format",
    "follows_strict_format", "format_reward", "language_consistency", "language_consistency_reward",
    "language_word_counts", "last_number", "mixes_languages", "reasoning_text", "reward_functions", "score",
    "scorer", "soft_format_reward", "tag_count_reward", "tag_count_score",
]
