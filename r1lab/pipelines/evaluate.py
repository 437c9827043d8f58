"""Held-out evaluation of a language model on a verifiable task, under a template.

Greedy decoding gives accuracy, format rate, mean length and the language-mixing rate; k
sampled completions per question give pass@k. Accuracy reads the answer the way the template
asks for it (inside <answer> tags for r1-zero, the last number otherwise); `answer_anywhere`
accuracy always reads the last number anywhere, so a gain in skill shows apart from format.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1lab.llm.generation import SamplingSettings, generate
from r1lab.llm.prompts import apply_template
from r1lab.rewards.parsing import answer_in_tags, follows_strict_format, last_number, mixes_languages
from r1lab.rewards.rules import answers_match
from r1lab.tasks.base import TaskItem


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


def template_answer(text: str, template: str) -> str | None:
    return answer_in_tags(text) if template == "r1-zero" else last_number(text)


def sample_texts(model, tokenizer, prompts: list[str], settings: SamplingSettings, batch_size: int,
                 generator: torch.Generator | None = None) -> tuple[list[str], list[int]]:
    texts, lengths = [], []
    for start in range(0, len(prompts), batch_size):
        out = generate(model, tokenizer, prompts[start : start + batch_size], settings, generator)
        texts += out.texts
        lengths += out.lengths.long().tolist()
    return texts, lengths


def evaluate(model, tokenizer, items: list[TaskItem], settings: EvalSettings, task=None) -> dict:
    """accuracy, answer_anywhere_accuracy, pass_at_k, format_rate, sampled_format_rate, mean_length, mixing_rate."""
    was_training = model.training
    model.eval()
    prompts = [apply_template(settings.template, item.question, tokenizer) for item in items]
    greedy = SamplingSettings(max_new_tokens=settings.max_new_tokens, temperature=0.0)
    texts, lengths = sample_texts(model, tokenizer, prompts, greedy, settings.batch_size)
    correct = [is_correct(template_answer(t, settings.template), item, task) for t, item in zip(texts, items)]
    anywhere = [is_correct(last_number(t), item, task) for t, item in zip(texts, items)]
    result = {
        "accuracy": _mean(correct),
        "answer_anywhere_accuracy": _mean(anywhere),
        "format_rate": _mean([follows_strict_format(t) for t in texts]),
        "mean_length": _mean(lengths),
        "mixing_rate": _mean([mixes_languages(t) for t in texts]),
        "items": len(items),
    }
    if settings.k > 0:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(settings.seed)
        sampling = SamplingSettings(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature)
        repeated = [p for p in prompts for _ in range(settings.k)]
        samples, _ = sample_texts(model, tokenizer, repeated, sampling, settings.batch_size, generator)
        hits = [is_correct(template_answer(t, settings.template), items[i // settings.k], task)
                for i, t in enumerate(samples)]
        per_item = [sum(hits[i * settings.k : (i + 1) * settings.k]) for i in range(len(items))]
        result["pass_at_k"] = _mean([c > 0 for c in per_item])
        result["pass_at_1_sampled"] = _mean(hits)
        result["sampled_format_rate"] = _mean([follows_strict_format(t) for t in samples])
        result["sampled_mixing_rate"] = _mean([mixes_languages(t) for t in samples])
        result["k"] = settings.k
    if was_training:
        model.train()
    result["examples"] = [{"prompt": item.question, "completion": text, "answer": item.answer, "correct": ok}
                          for item, text, ok in list(zip(items, texts, correct))[:5]]
    return result


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
