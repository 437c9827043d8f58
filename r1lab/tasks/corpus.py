"""The pretraining corpus of the tiny world, built so that every later stage has real work to do.

A stream of short documents, deterministic from a seed, drawn from train-split items only:

- direct answers ("347+85=432"): the facts, which a small model gets right on short numbers
  and often wrong on long ones (the first digit depends on every carry);
- worked solutions after a question (see `arithmetic.worked_solution`): longer, and far more
  accurate on long numbers, so RL can discover that thinking pays;
- some worked solutions in Chinese, or mixing the two languages, so samples mix languages
  and a language-consistency reward has something to fix;
- the R1-Zero template in a minority of documents, answered in every style (mostly with a
  plain sentence, sometimes with the tags), so the base model follows the format sometimes
  but not reliably, and its greedy answer under the template is the plain one;
- countdown puzzles, and short writing requests answered well or badly (preference data).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from r1lab.tasks.arithmetic import QUESTION_FORMS, ArithmeticTask, worked_solution
from r1lab.tasks.chat import ChatTask
from r1lab.tasks.countdown import CountdownTask
from r1lab.tasks.templates import r1_zero_prompt, tagged_response


@dataclass(frozen=True)
class CorpusMix:
    """Shares of each document kind (normalised), and of the answer styles under the template."""

    direct: float = 0.30
    worked: float = 0.24
    worked_chinese: float = 0.05
    worked_mixed: float = 0.04
    template: float = 0.22
    countdown: float = 0.07
    chat: float = 0.08
    # answer styles of template documents
    template_plain: float = 0.75
    template_worked_untagged: float = 0.08
    template_tagged_worked: float = 0.10
    template_tagged_direct: float = 0.03
    template_tagged_mixed: float = 0.04
    chat_rejected: float = 0.25
    arithmetic: ArithmeticTask = field(default_factory=lambda: ArithmeticTask(min_digits=1, max_digits=5))


def documents(seed: int, mix: CorpusMix | None = None) -> Iterator[tuple[str, str]]:
    """An endless, seeded stream of (kind, text) documents."""
    mix = mix or CorpusMix()
    rng = random.Random(f"corpus-{seed}")
    kinds = ["direct", "worked", "worked_chinese", "worked_mixed", "template", "countdown", "chat"]
    weights = [getattr(mix, k) for k in kinds]
    countdown, chat = CountdownTask(), ChatTask()
    while True:
        kind = rng.choices(kinds, weights)[0]
        if kind == "countdown":
            yield kind, _countdown_document(rng, countdown)
        elif kind == "chat":
            yield kind, _chat_document(rng, chat, mix.chat_rejected)
        else:
            yield kind, _arithmetic_document(rng, kind, mix)


def _operands(rng: random.Random, mix: CorpusMix):
    item = mix.arithmetic.sample(rng, "train")
    return item, item.fields["a"], item.fields["op"], item.fields["b"]


def _arithmetic_document(rng: random.Random, kind: str, mix: CorpusMix) -> str:
    item, a, op, b = _operands(rng, mix)
    if kind == "direct":
        form = rng.randrange(4)
        if form == 0:
            return f"{a}{op}{b}={item.answer}"
        if form == 1:
            return f"{item.question} {item.answer}"
        if form == 2:
            return f"Q: {item.question}\nA: {item.answer}"
        return f"{item.question} The answer is {item.answer}."
    if kind == "worked":
        return f"{item.question} {item.solution}"
    if kind == "worked_chinese":
        question = rng.choice(QUESTION_FORMS["zh"]).format(a=a, op=op, b=b)
        return f"{question}{worked_solution(a, op, b, 'zh')}"
    if kind == "worked_mixed":
        return f"{item.question} {worked_solution(a, op, b, 'mixed')}"
    styles = ["plain", "worked_untagged", "tagged_worked", "tagged_direct", "tagged_mixed"]
    style = rng.choices(styles, [getattr(mix, f"template_{s}") for s in styles])[0]
    prompt = r1_zero_prompt(item.question)
    if style == "plain":
        return f"{prompt} The answer is {item.answer}."
    if style == "worked_untagged":
        return f"{prompt} {item.solution}"
    if style == "tagged_worked":
        return prompt + tagged_response(item.solution, item.answer)
    if style == "tagged_direct":
        return prompt + tagged_response(f"{a}{op}{b}={item.answer}", item.answer)
    return prompt + tagged_response(worked_solution(a, op, b, rng.choice(["zh", "mixed"])), item.answer)


def _countdown_document(rng: random.Random, task: CountdownTask) -> str:
    item = task.sample(rng, "train")
    if rng.random() < 0.5:
        return f"{item.question} {item.solution}"
    if rng.random() < 0.5:
        return r1_zero_prompt(item.question) + tagged_response(item.solution, item.answer)
    return f"{item.question} {item.answer}={item.fields['target']}"


def _chat_document(rng: random.Random, task: ChatTask, rejected_share: float) -> str:
    item = task.sample(rng, "train")
    reply = item.fields["rejected"] if rng.random() < rejected_share else item.answer
    if rng.random() < 0.5:
        return f"User: {item.question}\nAssistant: {reply}"
    return f"Q: {item.question}\nA: {reply}"
