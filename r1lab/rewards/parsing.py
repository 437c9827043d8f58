"""Reading answers and format out of completions: the parsing every rule reward and evaluation shares.

Completions are model output, so every parser here is linear in their length: a scan with
str.find, never a regex that can backtrack (a lazy `<think>.*?</think>.*?<answer>` search took
seconds on 100k characters of repeated tags).
"""

from __future__ import annotations

import re

from r1lab.rewards.language import mixes_languages  # noqa: F401 - its home was here; evaluation imports it

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def answer_in_tags(text: str) -> str | None:
    """The content of the last <answer>...</answer>, stripped; None when there is none."""
    found = last_answer_block(text)
    return found.strip() if found is not None else None


def last_answer_block(text: str) -> str | None:
    """The content of the last <answer>...</answer> as written (not stripped); None when there is none.

    Pairs are read left to right, each <answer> with the first </answer> after it.
    """
    found, position = None, 0
    while (start := text.find("<answer>", position)) >= 0:
        end = text.find("</answer>", start + len("<answer>"))
        if end < 0:
            break
        found, position = text[start + len("<answer>") : end], end + len("</answer>")
    return found


def answer_in_boxed(text: str) -> str | None:
    r"""The content of the last \boxed{...}, braces balanced; None when there is none."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    for index in range(start + len("\\boxed{") - 1, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start + len("\\boxed{") : index].strip()
    return None


def last_number(text: str) -> str | None:
    """The last number anywhere in the text (format-free), commas dropped; None when there is none."""
    found = NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


EXPRESSION = re.compile(r"[\d(][\d\s+\-*/()]*[\d)]")


def last_expression(text: str) -> str | None:
    """The last arithmetic expression anywhere in the text (a countdown answer, format-free): the last
    run of digits, operators and brackets that holds an operator; None when there is none."""
    found = [m.strip() for m in EXPRESSION.findall(text) if any(op in m for op in "+-*/")]
    return found[-1] if found else None


ANSWER_LEADS = ("The answer is", "the answer is", "答案是", "答案：", "答案:")


def summary_text(text: str) -> str | None:
    """The part of an R1-format completion after its reasoning (after the last </think>), stripped;
    None when the reasoning never closes."""
    end = text.rfind("</think>")
    return text[end + len("</think>") :].strip() if end >= 0 else None


def answer_in_summary(text: str) -> str | None:
    """The answer an R1-format summary gives: 'The answer is 432.' -> '432', '答案是(3+4)*2。' ->
    '(3+4)*2'; a summary without the lead-in is the answer as it stands. None without a summary."""
    summary = summary_text(text)
    if not summary:
        return None
    for lead in ANSWER_LEADS:
        at = summary.rfind(lead)
        if at >= 0:
            summary = summary[at + len(lead) :]
            break
    return summary.strip().rstrip("。.").strip() or None


EXTRACTORS = {"answer_tag": answer_in_tags, "boxed": answer_in_boxed, "last_number": last_number,
              "summary": answer_in_summary}


def extract_answer(text: str, method: str = "answer_tag") -> str | None:
    if method not in EXTRACTORS:
        raise ValueError(f"unknown answer extraction '{method}'; choose from {', '.join(EXTRACTORS)}")
    return EXTRACTORS[method](text)


def follows_strict_format(text: str) -> bool:
    """`<think> ... </think> <answer> ... </answer>` and nothing else (R1-Zero's format).

    Each tag exactly once, in that order, only whitespace around the two blocks and between them.
    """
    body = text.strip()
    if not (body.startswith("<think>") and body.endswith("</answer>")):
        return False
    if any(body.count(tag) != 1 for tag in TAGS):
        return False
    think_end, answer_start = body.find("</think>"), body.find("<answer>")
    return think_end < answer_start and not body[think_end + len("</think>") : answer_start].strip()


def follows_soft_format(text: str) -> bool:
    """A think block followed somewhere by an answer block; other text allowed around them.

    <think>, then </think>, then <answer>, then </answer>, each searched after the one before.
    """
    position = 0
    for tag in TAGS:
        found = text.find(tag, position)
        if found < 0:
            return False
        position = found + len(tag)
    return True


def tag_count_score(text: str) -> float:
    """Partial credit: 0.25 for each of the four tags that appears exactly once."""
    return sum(0.25 for tag in ("<think>", "</think>", "<answer>", "</answer>") if text.count(tag) == 1)



def follows_r1_format(text: str) -> bool:
    """DeepSeek-R1's readable format as r1lab fixes it: `<think> reasoning </think> summary`, each
    think tag once, a non-empty summary after the reasoning, and no answer tags anywhere."""
    body = text.strip()
    if not body.startswith("<think>") or body.count("<think>") != 1 or body.count("</think>") != 1:
        return False
    if "<answer>" in body or "</answer>" in body:
        return False
    return bool(summary_text(body))
