"""The generative judge: given a question, its reference answer and a response, say whether the
response is correct. DeepSeek-R1 judged its rejection samples this way, feeding the ground truth
and the model's output to a base model.

The prompt format lives here once, for the corpus, the evaluation and the R1 stages:

    Judge the response.
    Response:
    <think> 347+85: ... So 347+85=432. </think> The answer is 432.
    Question: What is 347+85?
    Reference answer: 432
    Verdict: 432 vs 432: 2 vs 2 same; 43 vs 43: 3 vs 3 same; 4 vs 4: 4 vs 4 same; correct.

The response comes first, on its own line, so that it never follows a question the way an
answer under a template does: the corpus's judge documents must not teach the base model how to
answer questions (they hold tagged responses far more often than the template documents do).

The judge copies the response's final answer beside the reference, then compares them the way a
worked sum is done, one digit at a time from the right with what is left of both restated, and
stops at the first digit that differs ("422 vs 432: 2 vs 2 same; 42 vs 43: 2 vs 3 differ; wrong."):
a small model never has to compare two numbers at a glance. `parse_verdict` reads the last "correct" /
"wrong" of the verdict's line.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import ClassVar

from r1lab.tasks.arithmetic import ArithmeticTask, Slip, normalize_number, worked_solution
from r1lab.tasks.base import Split, TaskItem
from r1lab.tasks.templates import answer_sentence, r1_response, tagged_response

JUDGE_TEMPLATE = "Judge the response.\nResponse:\n{response}\nQuestion: {question}\nReference answer: {reference}\nVerdict:"
VERDICT = re.compile(r"\b(correct|wrong)\b")
ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
NUMBER = re.compile(r"-?\d+")
RESPONSE_STYLES = ("r1", "r1_zero", "plain")
STYLE_WEIGHTS = (0.3, 0.3, 0.4)


def judge_prompt(question: str, reference: str, response: str) -> str:
    """The judge's prompt; its completion is a verdict (see `verdict_text`)."""
    return JUDGE_TEMPLATE.format(question=question, reference=reference, response=response.strip())


def verdict_text(given: str | None, reference: str) -> str:
    """The judge's completion: the answer it read beside the reference, compared digit by digit
    from the right up to the first difference, then the verdict (correct when they are equal)."""
    if given is None or not given.isdigit() or not reference.isdigit():
        return f" {given if given is not None else 'none'} vs {reference}; {'correct' if given == reference else 'wrong'}."
    steps, left, right = [], given, reference
    while left or right:
        mine, theirs = (left or "0")[-1], (right or "0")[-1]
        steps.append(f"{left or 0} vs {right or 0}: {mine} vs {theirs} {'same' if mine == theirs else 'differ'}")
        if mine != theirs:
            break
        left, right = left[:-1], right[:-1]
    return " " + "; ".join(steps) + f"; {'correct' if given == reference else 'wrong'}."


def parse_verdict(text: str) -> bool | None:
    """True for "correct", False for "wrong" (the last one on the verdict's first line), else None."""
    found = VERDICT.findall(text.strip().split("\n", 1)[0] if text.strip() else "")
    return None if not found else found[-1] == "correct"


def response_answer(response: str) -> str | None:
    """The final answer of a response as the judge and the rule check read it: the last <answer>
    block when there is one, else the last number (worked solutions conclude with their answer)."""
    tagged = ANSWER_TAG.findall(response)
    text = tagged[-1] if tagged else response
    numbers = NUMBER.findall(text.replace(",", ""))
    return normalize_number(numbers[-1]) if numbers else None


def render_response(item: TaskItem, style: str, language: str, correct: bool, rng: random.Random,
                    check: bool = False, check_form: str = "computed_first") -> str:
    """A response to an arithmetic item in one of R1's shapes ("r1": <think> reasoning </think>
    summary; "r1_zero": think and answer tags; "plain": the answer sentence), right or wrong.
    A wrong worked response carries a slip and ends on the result it reached, as models' do."""
    a, op, b = item.fields["a"], item.fields["op"], item.fields["b"]
    if correct:
        thinking, result = worked_solution(a, op, b, language, check=check, check_form=check_form), item.answer
    else:
        thinking, result = wrong_solution(a, op, b, language, rng)
    if style == "plain":
        return " " + answer_sentence(result, language)
    if style == "r1":
        return r1_response(thinking, result, language)
    if style == "r1_zero":
        return tagged_response(thinking, result)
    raise ValueError(f"unknown response style '{style}'; styles: {', '.join(RESPONSE_STYLES)}")


def wrong_solution(a: int, op: str, b: int, language: str, rng: random.Random) -> tuple[str, str]:
    """A worked solution with one slip, and the wrong result it ends on."""
    truth = a + b if op == "+" else a - b
    digits = max(len(str(a)), len(str(b)))
    for _ in range(20):
        slip = Slip(rng.randrange(digits), rng.choice([-1, 1]), rng.choice(["sum", "copy"]))
        text = worked_solution(a, op, b, language, slip=slip)
        result = text.rstrip("。.").rsplit("=", 1)[1]
        if result != str(truth):
            return text, result
    wrong = truth + rng.choice([-10, -1, 1, 10]) if truth >= 10 else truth + 1
    body = worked_solution(a, op, b, language).rsplit("=", 1)[0]
    return body + f"={wrong}" + ("。" if language == "zh" else "."), str(wrong)


@dataclass(frozen=True)
class JudgeTask:
    """Judge items: the question is a judge prompt over an arithmetic item and a rendered response
    (every style, both languages, right and wrong alike); the answer is "correct" or "wrong"."""

    answer_format: ClassVar[str] = "text"  # the whole reply is the answer

    arithmetic: ArithmeticTask = field(default_factory=lambda: ArithmeticTask(max_digits=4, zh_share=0.5))
    name: str = "judge"
    check_form: str = "computed_first"  # how the checked responses write their checks

    def sample(self, rng: random.Random, split: Split = "train") -> TaskItem:
        item = self.arithmetic.sample(rng, split)
        style = rng.choices(RESPONSE_STYLES, STYLE_WEIGHTS)[0]
        language = item.language if rng.random() < 0.8 else ("en" if item.language == "zh" else "zh")
        correct = rng.random() < 0.5
        check = correct and style != "plain" and rng.random() < 0.15  # policies that learned to check
        response = render_response(item, style, language, correct, rng, check=check, check_form=self.check_form)
        given = response_answer(response)
        prompt = judge_prompt(item.question, item.answer, response)
        return TaskItem(self.name, prompt, "correct" if correct else "wrong", verdict_text(given, item.answer),
                        {"verdict": correct, "style": style, "language": item.language, "reference": item.answer,
                         "response": response})

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        return parse_verdict(answer_text) == item.fields["verdict"]
