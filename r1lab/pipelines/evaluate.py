"""Held-out evaluation of a language model on a verifiable task, under a template.

Greedy decoding gives accuracy, format rate, mean length, the language-mixing rates and the
reflection rate; k sampled completions per question give pass@k and the sampled rates. Accuracy
reads the answer the way the template asks for it (inside <answer> tags for r1-zero, the last
number otherwise; a program for code, the whole reply for requests and judgements);
`answer_anywhere` accuracy always reads the last number anywhere, so a gain in skill shows
apart from format.

    mixing_rate     = share of completions whose chain of thought is not purely in the question's language
    mixing_rate_zh  = the same over the Chinese questions only (None when there are none)
    reflection_rate = share of completions that check their result (`has_self_check`)

The figures about the tiny world's other data (harmful compliance, helpfulness, code pass rate,
judge agreement) are separate functions below: they sample replies under the chat or R1-Zero
template and apply each task's own rule check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from r1lab.llm.generation import SamplingSettings, generate
from r1lab.llm.prompts import apply_template
from r1lab.rewards.code import extract_code
from r1lab.rewards.language import mixes_languages
from r1lab.rewards.parsing import (
    answer_in_tags,
    follows_r1_format,
    follows_strict_format,
    last_expression,
    last_number,
    summary_text,
)
from r1lab.rewards.rules import answers_match
from r1lab.tasks.arithmetic import has_self_check
from r1lab.tasks.base import TaskItem
from r1lab.tasks.chat import is_helpful, is_refusal
from r1lab.tasks.judge import judge_prompt, parse_verdict, render_response, response_answer


@dataclass
class EvalSettings:
    template: str = "r1-zero"
    items: int = 200
    k: int = 8
    temperature: float = 1.0
    max_new_tokens: int = 160
    batch_size: int = 128
    seed: int = 0


def is_correct(answer: str | None, item: TaskItem, task=None) -> bool:
    """The task's verifier when there is one; else the accuracy reward's comparison (exact text or
    numeric value), so that training and evaluation count the same answers as right."""
    if answer is None:
        return False
    if task is not None and hasattr(task, "verify"):
        return bool(task.verify(answer, item))
    return answers_match(answer, item.answer, mode="numeric")


def are_correct(answers: list[str | None], items: list[TaskItem], task=None) -> list[bool]:
    """`is_correct` for a batch; a task with `verify_many` (code: programs in the sandbox) checks it at once."""
    if task is not None and hasattr(task, "verify_many"):
        given = [i for i, answer in enumerate(answers) if answer is not None]
        verdicts = task.verify_many([answers[i] for i in given], [items[i] for i in given]) if given else []
        correct = [False] * len(answers)
        for i, ok in zip(given, verdicts):
            correct[i] = bool(ok)
        return correct
    return [is_correct(answer, item, task) for answer, item in zip(answers, items)]


def template_answer(text: str, template: str, task=None) -> str | None:
    """The answer a completion gives, read as the template and the task ask for it: under r1 (R1's
    `<think> ... </think> summary`) from the summary, under r1-zero from the <answer> tags."""
    form = getattr(task, "answer_format", "number")
    if form == "code":
        return extract_code(text)
    if template == "r1":
        summary = summary_text(text)
        return None if summary is None else summary if form == "text" else _format_free(summary, form)
    if form == "text":
        return text.strip()
    return answer_in_tags(text) if template == "r1-zero" else _format_free(text, form)


def _format_free(text: str, form: str) -> str | None:
    return last_expression(text) if form == "expression" else last_number(text)


def follows_format(text: str, template: str) -> bool:
    """R1's reasoning-and-summary format under the r1 template; R1-Zero's tags under any other."""
    return follows_r1_format(text) if template == "r1" else follows_strict_format(text)


def anywhere_answer(text: str, task=None) -> str | None:
    """The answer read without the template's format: the last number (the last expression for
    countdown; a program, a reply, for those tasks)."""
    form = getattr(task, "answer_format", "number")
    return template_answer(text, "plain", task) if form in ("code", "text") else _format_free(text, form)


def sample_texts(model, tokenizer, prompts: list[str], settings: SamplingSettings, batch_size: int,
                 generator: torch.Generator | None = None) -> tuple[list[str], list[int]]:
    texts, lengths = [], []
    for start in range(0, len(prompts), batch_size):
        out = generate(model, tokenizer, prompts[start : start + batch_size], settings, generator)
        texts += out.texts
        lengths += out.lengths.long().tolist()
    return texts, lengths


def language_figures(texts: list[str], items: list[TaskItem], prefix: str = "") -> dict:
    """mixing_rate (each item's language as the target), mixing_rate_zh and reflection_rate of `texts`."""
    chinese = [text for text, item in zip(texts, items) if item.language == "zh"]
    return {
        f"{prefix}mixing_rate": _mean(mixes_languages(text, item.language) for text, item in zip(texts, items)),
        f"{prefix}mixing_rate_zh": _mean(mixes_languages(text, "zh") for text in chinese) if chinese else None,
        f"{prefix}reflection_rate": _mean(has_self_check(text) for text in texts),
    }


def evaluate(model, tokenizer, items: list[TaskItem], settings: EvalSettings, task=None) -> dict:
    """accuracy, answer_anywhere_accuracy, format_rate, mean_length, mixing_rate, mixing_rate_zh,
    reflection_rate (greedy); with k > 0 also pass_at_k, pass_at_1_sampled and the sampled rates."""
    was_training = model.training
    model.eval()
    prompts = [apply_template(settings.template, item.question, tokenizer) for item in items]
    greedy = SamplingSettings(max_new_tokens=settings.max_new_tokens, temperature=0.0)
    texts, lengths = sample_texts(model, tokenizer, prompts, greedy, settings.batch_size)
    correct = are_correct([template_answer(t, settings.template, task) for t in texts], items, task)
    anywhere = are_correct([anywhere_answer(t, task) for t in texts], items, task)
    chinese = [ok for ok, item in zip(correct, items) if item.language == "zh"]
    result = {
        "accuracy": _mean(correct),
        "accuracy_zh": _mean(chinese) if chinese else None,
        "answer_anywhere_accuracy": _mean(anywhere),
        "format_rate": _mean([follows_format(t, settings.template) for t in texts]),
        "mean_length": _mean(lengths),
        **language_figures(texts, items),
        "items": len(items),
    }
    if settings.k > 0:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(settings.seed)
        sampling = SamplingSettings(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature)
        repeated = [p for p in prompts for _ in range(settings.k)]
        repeated_items = [item for item in items for _ in range(settings.k)]
        samples, _ = sample_texts(model, tokenizer, repeated, sampling, settings.batch_size, generator)
        hits = are_correct([template_answer(t, settings.template, task) for t in samples], repeated_items, task)
        per_item = [sum(hits[i * settings.k : (i + 1) * settings.k]) for i in range(len(items))]
        result["pass_at_k"] = _mean([c > 0 for c in per_item])
        result["pass_at_1_sampled"] = _mean(hits)
        result["sampled_format_rate"] = _mean([follows_format(t, settings.template) for t in samples])
        result.update(language_figures(samples, repeated_items, prefix="sampled_"))
        result["k"] = settings.k
    if was_training:
        model.train()
    result["examples"] = [{"prompt": item.question, "completion": text, "answer": item.answer, "correct": ok}
                          for item, text, ok in list(zip(items, texts, correct))[:5]]
    return result


# ---- the base-model figures beyond arithmetic ---------------------------------------------------

def sampled_replies(model, tokenizer, items: list[TaskItem], template: str, k: int = 4, max_new_tokens: int = 48,
                    seed: int = 0, batch_size: int = 128, temperature: float = 1.0) -> tuple[list[TaskItem], list[str]]:
    """k replies per item at `temperature` under `template`: (the item of each reply, the replies)."""
    was_training = model.training
    model.eval()
    repeated = [item for item in items for _ in range(k)]
    prompts = [apply_template(template, item.question, tokenizer) for item in repeated]
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    texts, _ = sample_texts(model, tokenizer, prompts, SamplingSettings(max_new_tokens, temperature), batch_size,
                            generator)
    if was_training:
        model.train()
    return repeated, texts


def harmful_compliance_rate(model, tokenizer, items: list[TaskItem], k: int = 4, seed: int = 0,
                            max_new_tokens: int = 48) -> float:
    """Share of sampled replies (chat template, T = 1) to harmful requests that do not refuse."""
    _, replies = sampled_replies(model, tokenizer, items, "chat", k, max_new_tokens, seed)
    return _mean(not is_refusal(reply) for reply in replies)


def helpful_rate(model, tokenizer, items: list[TaskItem], k: int = 4, seed: int = 0, max_new_tokens: int = 48) -> float:
    """Share of sampled replies (chat template, T = 1) to benign requests that `is_helpful` accepts."""
    repeated, replies = sampled_replies(model, tokenizer, items, "chat", k, max_new_tokens, seed)
    return _mean(is_helpful(reply, item) for reply, item in zip(replies, repeated))


def code_pass_rate(model, tokenizer, items: list[TaskItem], task, k: int = 4, seed: int = 0, template: str = "r1-zero",
                   max_new_tokens: int = 96) -> float:
    """Share of sampled programs (T = 1) that pass every hidden test, run in the sandbox."""
    repeated, replies = sampled_replies(model, tokenizer, items, template, k, max_new_tokens, seed)
    return _mean(task.verify_many([extract_code(reply) for reply in replies], repeated))


@dataclass
class JudgeCase:
    """One response to judge, and what the rule verifier says of it."""

    question: str
    reference: str
    response: str
    correct: bool


def own_judge_cases(model, tokenizer, items: list[TaskItem], task, count: int, k: int = 4, seed: int = 0,
                    max_new_tokens: int = 160) -> list[JudgeCase]:
    """The model's own sampled answers (R1-Zero template, T = 1) to held-out questions, labelled by
    the rule verifier on `response_answer`, balanced: as many right as wrong (count // 2 each)."""
    repeated, replies = sampled_replies(model, tokenizer, items, "r1-zero", k, max_new_tokens, seed)
    labels = are_correct([response_answer(reply) for reply in replies], repeated, task)
    cases = [JudgeCase(item.question, item.answer, reply, ok) for item, reply, ok in zip(repeated, replies, labels)]
    right, wrong = [c for c in cases if c.correct], [c for c in cases if not c.correct]
    half = min(count // 2, len(right), len(wrong))
    rng = random.Random(seed)
    return rng.sample(right, half) + rng.sample(wrong, half)


def rendered_judge_cases(items: list[TaskItem], seed: int = 0) -> list[JudgeCase]:
    """Responses rendered from held-out items in every style of R1 (R1 format, R1-Zero tags, plain),
    in both languages, right and wrong alternately: what rejection sampling will hand the judge."""
    rng = random.Random(seed)
    cases = []
    for index, item in enumerate(items):
        style = ("r1", "r1_zero", "plain")[index % 3]
        language = item.language if rng.random() < 0.8 else ("en" if item.language == "zh" else "zh")
        correct = index % 2 == 0
        cases.append(JudgeCase(item.question, item.answer, render_response(item, style, language, correct, rng), correct))
    return cases


def judge_agreement(model, tokenizer, cases: list[JudgeCase], max_new_tokens: int = 96, batch_size: int = 64) -> dict:
    """The model as a generative judge (greedy, `judge_prompt`): agreement with the rule verifier's
    labels, the share of verdicts it could not parse, and agreement on right and on wrong responses."""
    was_training = model.training
    model.eval()
    prompts = [judge_prompt(case.question, case.reference, case.response) for case in cases]
    texts, _ = sample_texts(model, tokenizer, prompts, SamplingSettings(max_new_tokens, 0.0), batch_size)
    if was_training:
        model.train()
    return verdict_agreement(texts, cases)


def verdict_agreement(texts: list[str], cases: list[JudgeCase]) -> dict:
    """How the judge's completions `texts` agree with the cases' rule labels (an unparsed verdict disagrees)."""
    verdicts = [parse_verdict(text) for text in texts]
    agree = [verdict is case.correct for verdict, case in zip(verdicts, cases)]
    return {
        "agreement": _mean(agree),
        "unparsed": _mean(verdict is None for verdict in verdicts),
        "agreement_on_right": _mean(a for a, case in zip(agree, cases) if case.correct),
        "agreement_on_wrong": _mean(a for a, case in zip(agree, cases) if not case.correct),
        "cases": len(cases),
    }


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
