"""Reading answers and format out of completions: the parsing every rule reward and evaluation shares."""

from __future__ import annotations

import re

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
STRICT_FORMAT = re.compile(r"^\s*<think>(?:(?!<think>|</think>|<answer>|</answer>).)*</think>\s*"
                           r"<answer>(?:(?!<think>|</think>|<answer>|</answer>).)*</answer>\s*$", re.DOTALL)
SOFT_FORMAT = re.compile(r"<think>.*?</think>.*?<answer>.*?</answer>", re.DOTALL)
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
TAG = re.compile(r"</?(?:think|answer)>")


def answer_in_tags(text: str) -> str | None:
    """The content of the last <answer>...</answer>, stripped; None when there is none."""
    found = ANSWER_TAG.findall(text)
    return found[-1].strip() if found else None


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


EXTRACTORS = {"answer_tag": answer_in_tags, "boxed": answer_in_boxed, "last_number": last_number}


def extract_answer(text: str, method: str = "answer_tag") -> str | None:
    if method not in EXTRACTORS:
        raise ValueError(f"unknown answer extraction '{method}'; choose from {', '.join(EXTRACTORS)}")
    return EXTRACTORS[method](text)


def follows_strict_format(text: str) -> bool:
    """`<think> ... </think> <answer> ... </answer>` and nothing else (R1-Zero's format)."""
    return STRICT_FORMAT.match(text) is not None


def follows_soft_format(text: str) -> bool:
    """A think block followed somewhere by an answer block; other text allowed around them."""
    return SOFT_FORMAT.search(text) is not None


def tag_count_score(text: str) -> float:
    """Partial credit: 0.25 for each of the four tags that appears exactly once."""
    return sum(0.25 for tag in ("<think>", "</think>", "<answer>", "</answer>") if text.count(tag) == 1)


def mixes_languages(text: str) -> bool:
    """True when the text holds both CJK characters and Latin words (tags aside)."""
    bare = TAG.sub(" ", text)
    return bool(CJK.search(bare)) and bool(LATIN_WORD.search(bare))
