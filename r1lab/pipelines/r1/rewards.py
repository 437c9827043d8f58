"""The rewards of the R1 stages, as reward functions with TRL's signature.

    verified     1 when the task's own rule check accepts the answer of R1's summary: the number
                 of an arithmetic answer, the expression of a countdown answer, the program of a
                 code answer (every hidden test passes in the sandbox); None for requests
    r1_format    R1's `<think> reasoning </think> summary` (r1lab.rewards)
    language_consistency   the share of the chain of thought's words in the question's language

Stage 4 adds the reward models, each only where it applies: the helpful one on the summary of
the answer to a benign request, the harmless one on the whole answer to a harmful request.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from r1lab.rewards import RewardFunction, reward_functions, scorer
from r1lab.rewards.code import code_reward
from r1lab.rewards.parsing import answer_in_summary, answer_in_tags, last_number, summary_text
from r1lab.tasks.arithmetic import normalize_number
from r1lab.tasks.countdown import check_countdown


def verified_reward(prompts, completions, task=None, answer=None, numbers=None, target=None, tests=None,
                    extract: str = "summary", **_) -> list[float | None]:
    """The task's own verdict on each completion's answer, read from R1's summary (`extract="summary"`)
    or from R1-Zero's <answer> tags (`"answer_tag"`); None where there is no task (requests)."""
    n = len(completions)
    task, answer = task or [None] * n, answer or [None] * n
    numbers, target, tests = numbers or [None] * n, target or [None] * n, tests or [None] * n
    scores: list[float | None] = [None] * n
    code_rows = [i for i in range(n) if task[i] == "code"]
    for i in range(n):
        name = task[i] or ""
        part = summary_text(completions[i]) if extract == "summary" else answer_in_tags(completions[i])
        if name.startswith("arithmetic"):
            given = last_number(part) if part else None
            scores[i] = float(given is not None and normalize_number(given) == str(answer[i]))
        elif name == "countdown":
            expression = answer_in_summary(completions[i]) if extract == "summary" else part
            scores[i] = float(expression is not None and check_countdown(expression, list(numbers[i]), int(target[i]))[1])
    if code_rows:
        passed = code_reward(None, [completions[i] for i in code_rows], [tests[i] for i in code_rows], partial=False)
        for i, value in zip(code_rows, passed):
            scores[i] = value
    return scores


def where(function: Callable, field: str, value) -> Callable:
    """`function`, applied only to the samples whose `field` equals `value` (None elsewhere)."""

    def applied(prompts, completions, **fields):
        rows = [i for i, v in enumerate(fields.get(field) or [None] * len(completions)) if v == value]
        scores: list[float | None] = [None] * len(completions)
        if rows:
            values = function([prompts[i] for i in rows], [completions[i] for i in rows],
                              **{k: [v[i] for i in rows] for k, v in fields.items()})
            for i, score in zip(rows, values):
                scores[i] = score
        return scores

    return applied


def r1_zero_rewards() -> list[RewardFunction]:
    """The R1-Zero baseline's: accuracy read from the <answer> tags, and R1-Zero's format."""
    return [RewardFunction("verified", partial(verified_reward, extract="answer_tag"), 1.0, None),
            *reward_functions(["format"])]


def reasoning_rewards(language_weight: float, timeout: float = 10.0) -> list[RewardFunction]:
    """Accuracy by the task's verifier, R1's format, and (weight > 0) language consistency, summed."""
    functions = [RewardFunction("verified", verified_reward, 1.0, None), *reward_functions(["r1_format"], timeout=timeout)]
    if language_weight > 0:
        functions += reward_functions(["language_consistency"], [language_weight], timeout=timeout)
    return functions


def preference_rewards(helpful_model: str, harmless_model: str, device=None, dtype=None) -> list[RewardFunction]:
    """The helpful RM on the summary of answers to benign requests, the harmless RM on the whole
    answer to harmful ones (DeepSeek-R1's last stage)."""
    from r1lab.rewards.reward_model import reward_model_reward

    helpful = reward_model_reward(helpful_model, summary_only=True, device=device, dtype=dtype)
    harmless = reward_model_reward(harmless_model, summary_only=False, device=device, dtype=dtype)
    return [RewardFunction("helpful_rm", where(helpful, "harmful", False), 1.0, None),
            RewardFunction("harmless_rm", where(harmless, "harmful", True), 1.0, None)]


def all_scenario_rewards(language_weight: float, helpful_model: str, harmless_model: str, device=None,
                         dtype=None) -> list[RewardFunction]:
    """Stage 4's: the reasoning rewards for reasoning prompts, the reward models for requests."""
    return reasoning_rewards(language_weight) + preference_rewards(helpful_model, harmless_model, device, dtype)


class StageScorer:
    """A stage's reward functions as the `score_completions` callable GRPO takes. Built through
    `Recipe(StageScorer, build, *args)`, each generation worker on Ray builds its own from the same
    call (a reward model is loaded where the samples are)."""

    def __init__(self, build: Callable[..., list[RewardFunction]], *args):
        self.functions = build(*args)
        self.score = scorer(self.functions)

    def __call__(self, prompts, completions, fields):
        return self.score(prompts, completions, fields)
