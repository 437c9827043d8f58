"""Rule rewards, each a plain function over a batch: `f(prompts, completions, **fields) -> list[float | None]`.

This is the convention TRL users know: every extra column of the dataset arrives as a keyword
argument holding one value per completion (`answer`, `numbers`, `target`, ...), and `None`
means "not applicable to this sample" (it drops out of that function's statistics).
"""

from __future__ import annotations

import logging
from functools import lru_cache

from r1lab.rewards.parsing import (
    extract_answer,
    follows_r1_format,
    follows_soft_format,
    follows_strict_format,
    tag_count_score,
)
from r1lab.tasks.arithmetic import normalize_number
from r1lab.tasks.countdown import check_countdown


def answers_match(given: str | None, expected: str, mode: str = "math") -> bool:
    """Exact text, numeric value, or mathematical equivalence (math-verify), by `mode`.

    "exact": the stripped strings are equal; "numeric": equal as numbers ("1,000" == "1000.0");
    "math": numeric first, then math-verify's symbolic equivalence ("\\frac{1}{2}" == "0.5").
    """
    if given is None:
        return False
    if given.strip() == str(expected).strip():
        return True
    if mode == "exact":
        return False
    a, b = normalize_number(given), normalize_number(str(expected))
    if a is not None and b is not None and _is_plain_number(given) and _is_plain_number(str(expected)):
        return a == b
    if mode == "numeric":
        return False
    return _math_equivalent(given, str(expected))


def accuracy_reward(prompts, completions, answer, extract: str = "answer_tag", mode: str = "math", **_) -> list[float | None]:
    """1.0 when the extracted answer equals the ground truth, else 0.0 (None when no ground truth)."""
    return [None if truth is None else float(answers_match(extract_answer(text, extract), str(truth), mode))
            for text, truth in zip(completions, answer)]


def format_reward(prompts, completions, **_) -> list[float]:
    """1.0 for R1-Zero's strict `<think> ... </think> <answer> ... </answer>` and nothing else."""
    return [float(follows_strict_format(text)) for text in completions]


def r1_format_reward(prompts, completions, **_) -> list[float]:
    """1.0 for R1's readable `<think> reasoning </think> summary`, a summary after the reasoning."""
    return [float(follows_r1_format(text)) for text in completions]


def soft_format_reward(prompts, completions, **_) -> list[float]:
    """1.0 when a think block is followed by an answer block, other text allowed."""
    return [float(follows_soft_format(text)) for text in completions]


def tag_count_reward(prompts, completions, **_) -> list[float]:
    """Partial credit: 0.25 per tag present exactly once."""
    return [tag_count_score(text) for text in completions]


def countdown_reward(prompts, completions, numbers, target, extract: str = "answer_tag",
                     format_score: float = 0.1, **_) -> list[float | None]:
    """TinyZero's scheme: 1 for a correct expression, `format_score` for a well-formed wrong one, else 0.

    Well-formed means it parses as integers with + - * and uses exactly the given numbers. The
    expression is evaluated by walking its syntax tree; model text never reaches `eval`.
    """
    scores: list[float | None] = []
    for text, given, goal in zip(completions, numbers, target):
        if given is None or goal is None:
            scores.append(None)
            continue
        expression = extract_answer(text, extract)
        if expression is None:
            scores.append(0.0)
            continue
        well_formed, correct = check_countdown(expression, list(given), int(goal))
        scores.append(1.0 if correct else format_score if well_formed else 0.0)
    return scores


def _is_plain_number(text: str) -> bool:
    stripped = text.strip().replace(",", "")
    try:
        float(stripped)
        return True
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def _math_equivalent(given: str, expected: str) -> bool:
    from math_verify import parse, verify  # imported here: it pulls in sympy, which takes a second

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every call with timeouts off
    try:
        # math-verify's own timeouts use SIGALRM, which only works on the main thread; the
        # reward runner enforces time limits instead, so they are switched off here
        gold, guess = parse(expected, parsing_timeout=None), parse(given, parsing_timeout=None)
        return bool(gold) and bool(guess) and bool(verify(gold, guess, timeout_seconds=None))
    except Exception:  # math-verify raises on odd input; an unparsable answer is simply not a match
        return False
