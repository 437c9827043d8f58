"""The data of the R1 stages: reasoning prompts, cold-start chains of thought, readability filters.

Cold start. DeepSeek collected a few thousand long chains of thought and made them readable
(one language, a summary for the reader). In the tiny world the readable form already exists:
every task renders its worked solution in the question's language, so the cold-start data is
rendered from the tasks, in R1's format (`<think> reasoning </think> summary`), and passed
through the same readability filters as stage 3's samples. The candidates are drawn in the
styles the corpus writes them (a Chinese question answered in Chinese, in English or mixed),
so the filters have real work: a mixed chain of thought, or one in the other language, is
dropped, as DeepSeek dropped theirs. Rendering from the tasks rather than rewriting the R1-Zero
model's own samples gives correct, consistent data by construction; on the tiny world the
R1-Zero model's samples are the same worked form, so rewriting them would add nothing.

The filters are small functions of a completion; each returns the reason it fails, or None.
"""

from __future__ import annotations

import random
from collections import Counter

from r1lab.rewards.language import mixes_languages, reasoning_text
from r1lab.rewards.parsing import follows_r1_format
from r1lab.tasks import ArithmeticTask, CodeTask, CountdownTask, GeneralTask, get_task
from r1lab.tasks.base import TaskItem
from r1lab.tasks.code import KINDS, plan_text, program_text
from r1lab.tasks.templates import answer_sentence, r1_response

# ---------------------------------------------------------------- prompts


def reasoning_items(tasks, count: int, split: str, seed: int) -> list[TaskItem]:
    """A seeded mix of reasoning prompts by the shares of `tasks` (arithmetic in both languages,
    countdown, code), shuffled together."""
    shares = {"arithmetic": tasks.arithmetic, "countdown": tasks.countdown, "code": tasks.code}
    total = sum(shares.values())
    sources = {"arithmetic": ArithmeticTask(min_digits=1, max_digits=tasks.max_digits, zh_share=tasks.zh_share),
               "countdown": CountdownTask(), "code": CodeTask()}
    items: list[TaskItem] = []
    for name, share in shares.items():
        n = round(count * share / total)
        if n:
            items += sources[name].items(n, split, seed)
    random.Random(f"r1-mix-{split}-{seed}").shuffle(items)
    return items


def general_items(count: int, split: str, seed: int, harmful_share: float) -> list[TaskItem]:
    return GeneralTask(harmful_share=harmful_share).items(count, split, seed)


def task_of(item: TaskItem):
    """The task an item came from (its verifier, its renderer)."""
    name = item.task
    if name.startswith("arithmetic"):
        return ArithmeticTask()
    return get_task(name)


# ---------------------------------------------------------------- R1-format responses


def code_summary(item: TaskItem) -> str:
    """The program, as the summary of a code answer: a fenced block the reader can copy."""
    f = item.fields
    return f"```python\n{program_text(f['function'], tuple(f['args']), KINDS[f['kind']].right[0])}\n```"


def r1_answer(item: TaskItem, thinking: str, language: str) -> str:
    """A reasoning item's response in R1's format: the reasoning, then the summary."""
    if item.task == "code":
        return f" <think> {thinking} </think> {code_summary(item)}"
    return r1_response(thinking, item.answer, language)


def readable_candidate(item: TaskItem, rng: random.Random, check_share: float) -> str:
    """One cold-start candidate for a reasoning item, in a style the corpus writes: mostly in the
    question's language, sometimes in the other one or mixed (which the filters then drop)."""
    language = item.language
    if item.task.startswith("arithmetic"):
        style = rng.choices([language, "en" if language == "zh" else "zh", "mixed"], [0.8, 0.1, 0.1])[0]
        thinking = task_of(item).render_solution(item, style, check=rng.random() < check_share)
        return r1_answer(item, thinking, language)
    if item.task == "code":
        f = item.fields
        return r1_answer(item, plan_text(f["kind"], f["function"], tuple(f["args"]), language), language)
    return r1_answer(item, item.solution, language)


HARMFUL_THINKING = "This would hurt someone, so I decline politely."


def general_response(item: TaskItem) -> str:
    """A request answered in R1's format (the chosen reply; a harmful request's is the refusal).

    A harmful request gets a one-line thought that says why it is declined. A simple benign
    request gets an empty one, as DeepSeek gave simple queries ("hello") no chain of thought: the
    tiny model finds the request's names and things for its reply only when nothing stands
    between the request and the reply. Measured on the cold start (100 steps, lr 3e-4, held-out
    helpful share): empty thought 0.83; "Be kind." 0.26 (60 steps); a fixed sentence 0.11; the
    request restated in the thought 0.00, where the model cannot copy the request even there.
    """
    if item.fields.get("harmful"):
        return f" <think> {HARMFUL_THINKING} </think> {item.answer}"
    return f" <think> </think> {item.answer}"


def cold_start_pairs(tasks, settings, seed: int) -> tuple[list[dict], dict]:
    """Stage 1's SFT pairs {prompt, completion}: rendered candidates that pass the filters, plus
    requests with a short chain of thought. Returns the pairs and how many each filter removed."""
    rng = random.Random(f"cold-start-{seed}")
    reasoning = reasoning_items(tasks, round(settings.examples * (1 - settings.general_share)), "train", seed)
    kept, removed = [], Counter()
    for item in reasoning:
        completion = readable_candidate(item, rng, settings.check_share)
        reason = unreadable(completion, item)
        if reason:
            removed[reason] += 1
        else:
            kept.append({"prompt": item.question, "completion": completion, "task": item.task})
    for item in general_items(round(settings.examples * settings.general_share), "train", seed,
                              harmful_share=settings.harmful_share):
        kept.append({"prompt": item.question, "completion": general_response(item), "task": "general"})
    rng.shuffle(kept)
    return kept, {"candidates": len(reasoning), "kept_reasoning": len(reasoning) - sum(removed.values()),
                  "removed": dict(removed), "general": len(kept) - len(reasoning) + sum(removed.values())}


# ---------------------------------------------------------------- readability filters


def no_summary(completion: str) -> str | None:
    return None if follows_r1_format(completion) else "missing_summary"


def mixed_language(completion: str, language: str) -> str | None:
    """The chain of thought is not purely in the question's language (R1's language rule)."""
    return "mixed_language" if mixes_languages(completion, language) else None


def overlong_paragraph(completion: str, limit: int) -> str | None:
    paragraphs = reasoning_text(completion).split("\n\n")
    return "overlong_paragraph" if max(len(p) for p in paragraphs) > limit else None


def code_where_none_belongs(completion: str, task: str) -> str | None:
    """A code block or a function definition in an answer to a question that asks for no code."""
    if task == "code":
        return None
    return "code_block" if "```" in completion or "def " in completion else None


def unreadable(completion: str, item: TaskItem, max_paragraph_chars: int = 600) -> str | None:
    """The first readability filter the completion fails, or None when it is readable."""
    return (no_summary(completion) or mixed_language(completion, item.language)
            or overlong_paragraph(completion, max_paragraph_chars) or code_where_none_belongs(completion, item.task))


__all__ = ["answer_sentence", "cold_start_pairs", "code_summary", "general_items", "general_response",
           "reasoning_items", "r1_answer", "task_of", "unreadable"]
