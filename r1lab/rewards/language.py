"""Language consistency: DeepSeek-R1's reward against chains of thought that mix languages.

R1 (§2.3.2): "calculated as the proportion of target language words in the CoT". One counting
serves the reward and the evaluation's mixing rate:

    words(text)     = one per CJK ideograph + one per run of two or more Latin letters
    consistency     = words in the target language / all words      (None when there are none)
    mixes_languages = consistency < 1            with a target
                    = words of both languages    without one

Only the chain of thought counts: the text inside <think>...</think> (to the end when it never
closes; the whole text when there is no <think>), so R1's `<think> reasoning </think> summary`
format is read the same way. Digits, math symbols, punctuation (CJK punctuation included) and
single letters (the x in 2x + 1) belong to no language.
"""

from __future__ import annotations

import re

# the CJK Unified Ideographs block and its extension A; CJK punctuation (U+3000-303F) is neutral
CJK_IDEOGRAPH = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
# a run of Latin letters (ASCII and the accented Latin-1 / Latin Extended-A and -B letters)
LATIN_RUN = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")
TAG = re.compile(r"</?(?:think|answer)>")
LANGUAGES = ("en", "zh")


def reasoning_text(completion: str) -> str:
    """The chain of thought: between <think> and </think>; to the end if it never closes; all text without <think>."""
    start = completion.find("<think>")
    if start < 0:
        return completion
    start += len("<think>")
    end = completion.find("</think>", start)
    return completion[start:] if end < 0 else completion[start:end]


def language_word_counts(text: str) -> tuple[int, int]:
    """(Chinese words, English words) in `text`: one per CJK ideograph, one per Latin run of >= 2 letters.

    Tags are not words. "得2. So 12" -> (1, 1); "x = 2" -> (0, 0).
    """
    bare = TAG.sub(" ", text)
    chinese = len(CJK_IDEOGRAPH.findall(bare))
    english = sum(1 for run in LATIN_RUN.findall(bare) if len(run) >= 2)
    return chinese, english


def language_consistency(text: str, target: str) -> float | None:
    """Share of the chain of thought's words that are in `target` ("en" or "zh"); None when it has no words.

    consistency = n_target / (n_zh + n_en), counted in `reasoning_text(text)`.
    """
    if target not in LANGUAGES:
        raise ValueError(f"unknown target language {target!r}; choose from {', '.join(LANGUAGES)}")
    chinese, english = language_word_counts(reasoning_text(text))
    if chinese + english == 0:
        return None
    return (chinese if target == "zh" else english) / (chinese + english)


def mixes_languages(text: str, target: str | None = None) -> bool:
    """Whether the chain of thought mixes languages: with a target, any word not in it; else words of both.

    A chain of thought without words does not mix. The evaluation's mixing rate is the mean of this.
    """
    if target is not None:
        consistency = language_consistency(text, target)
        return consistency is not None and consistency < 1.0
    chinese, english = language_word_counts(reasoning_text(text))
    return chinese > 0 and english > 0


def language_consistency_reward(prompts, completions, language=None, target_language: str | None = None,
                                **_) -> list[float | None]:
    """R1's language-consistency reward per completion: `language_consistency(completion, its language)`.

    The target is the sample's `language` field, else the `target_language` setting (named so as
    not to meet countdown's `target` field); None for a sample with neither, or whose chain of
    thought has no words.
    """
    languages = list(language) if language is not None else [None] * len(completions)
    return [None if (wanted or target_language) is None else language_consistency(text, wanted or target_language)
            for text, wanted in zip(completions, languages)]
