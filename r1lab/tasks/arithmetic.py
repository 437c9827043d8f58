"""Multi-digit addition and subtraction, with copy-friendly worked solutions in three languages.

The worked solution peels one digit off the right of each operand per step, restating what is
left, so every step reads only the last digit of two short numbers and the carry just written:

    347+85: 7+5+0=12, 2; 34+8: 4+8+1=13, 32; 3+0: 3+0+1=4, 432. So 347+85=432.
    742-385: 12-5-0=7, 7; 74-38: 14-8-1=5, 57; 7-3: 7-3-1=3, 357. So 742-385=357.

The partial result grows by one digit per step, so the final answer is a copy, not a reversal.
A small model gets this form right far more often than the direct answer, whose first digit
depends on every carry: that gap is what lets RL discover that thinking pays.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from r1lab.tasks.base import Language, Split, TaskItem, in_test_split

QUESTION_FORMS = {
    "en": ["What is {a}{op}{b}?", "Compute {a}{op}{b}.", "{a}{op}{b}=?", "Calculate {a}{op}{b}."],
    "zh": ["{a}{op}{b}等于多少？", "计算{a}{op}{b}。"],
}


@dataclass(frozen=True)
class ArithmeticTask:
    """Addition and subtraction of non-negative integers; subtraction keeps a >= b.

    `min_digits`..`max_digits` bound each operand's digit count; the difficulty of an item is
    its longer operand's digit count. One in `1/test_share` operand pairs is held out.
    """

    min_digits: int = 1
    max_digits: int = 4
    ops: tuple[str, ...] = ("+", "-")
    test_share: float = 0.1
    name: str = "arithmetic"

    def __post_init__(self):
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"arithmetic: need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}")
        if not self.ops or set(self.ops) - {"+", "-"}:
            raise ValueError(f"arithmetic: ops must be a non-empty subset of '+', '-', got {self.ops!r}")

    def sample(self, rng: random.Random, split: Split = "train", question_language: Language = "en") -> TaskItem:
        while True:
            op = rng.choice(self.ops)
            a = _number(rng, rng.randint(self.min_digits, self.max_digits))
            b = _number(rng, rng.randint(self.min_digits, self.max_digits))
            if op == "-" and a < b:
                a, b = b, a
            if in_test_split(f"{a}{op}{b}", self.test_share) == (split == "test"):
                return self.item(a, op, b, rng, question_language)

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def item(self, a: int, op: str, b: int, rng: random.Random | None = None, question_language: Language = "en") -> TaskItem:
        forms = QUESTION_FORMS["zh" if question_language == "zh" else "en"]
        form = forms[0] if rng is None else rng.choice(forms)
        answer = str(a + b if op == "+" else a - b)
        return TaskItem(
            task=self.name,
            question=form.format(a=a, op=op, b=b),
            answer=answer,
            solution=worked_solution(a, op, b, "en"),
            fields={"a": a, "b": b, "op": op, "digits": max(len(str(a)), len(str(b)))},
        )

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        return normalize_number(answer_text) == item.answer


def worked_solution(a: int, op: str, b: int, language: Language = "en") -> str:
    """The digit-by-digit solution of `a op b` (see the module docstring), in `language`."""
    steps, digits, carry = [], "", 0
    left, right = str(a), str(b)
    while left or right or (op == "+" and carry):
        x, y = int((left or "0")[-1]), int((right or "0")[-1])
        head = f"{left or 0}{op}{right or 0}"
        if op == "+":
            total = x + y + carry
            step, digit, carry = f"{x}+{y}+{carry}={total}", total % 10, total // 10
        else:
            borrowed = x - y - carry < 0
            top = x + 10 if borrowed else x
            digit = top - y - carry
            step, carry = f"{top}-{y}-{carry}={digit}", int(borrowed)
        digits = f"{digit}{digits}"
        steps.append((head, step, digits))
        left, right = left[:-1], right[:-1]
    result = str(int(digits))
    if language == "en":
        body = "; ".join(f"{head}: {step}, {part}" for head, step, part in steps)
        return f"{a}{op}{b}: " + body.split(": ", 1)[1] + f". So {a}{op}{b}={result}."
    if language == "zh":
        body = "；".join(f"{head}：{step}，得{part}" for head, step, part in steps)
        return f"{a}{op}{b}：" + body.split("：", 1)[1] + f"。所以{a}{op}{b}={result}。"
    # mixed: English sentences with Chinese step words, the way R1-Zero's samples mixed languages
    body = "; ".join(f"{head}: {step}, 得{part}" for head, step, part in steps)
    return f"{a}{op}{b}: " + body.split(": ", 1)[1] + f". So {a}{op}{b}={result}."


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def normalize_number(text: str) -> str | None:
    """'  1,234 ' -> '1234'; '007' -> '7'; '12.0' -> '12'; None when no number is there."""
    match = _NUMBER.search(text.replace(" ", ""))
    if match is None:
        return None
    number = match.group().replace(",", "")
    try:
        value = float(number)
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else str(value)


def _number(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)
