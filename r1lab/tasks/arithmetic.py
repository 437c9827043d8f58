"""Multi-digit addition and subtraction, asked in English or Chinese, with copy-friendly worked
solutions that can check themselves.

The worked solution peels one digit off the right of each operand per step, restating what is
left, so every step reads only the last digit of two short numbers and the carry just written:

    347+85: 7+5+0=12, 2; 34+8: 4+8+1=13, 32; 3+0: 3+0+1=4, 432. So 347+85=432.
    742-385: 12-5-0=7, 7; 74-38: 14-8-1=5, 57; 7-3: 7-3-1=3, 357. So 742-385=357.

The partial result grows by one digit per step, so the final answer is a copy, not a reversal.
A small model gets this form right far more often than the direct answer, whose first digit
depends on every carry: that gap is what lets RL discover that thinking pays.

A checked solution states its result, then verifies it by the inverse operation in the same
column form, one digit at a time, setting each digit it computes beside the first operand's
digit; at the first digit that differs it says so and redoes the sum (the seed's "aha moment").
Two forms of the check step (`CHECK_FORMS`); the bundled base model learnt the first:

    computed_first:
    347+85: ... 432. So 347+85=432. Check: 432-85 vs 347: 12-5-0=7, 7 vs 7 same; 43-8 vs 34: 13-8-1=4,
        4 vs 4 same; 4-0 vs 3: 4-0-1=3, 3 vs 3 same; right, so 347+85=432.
    347+85: ... 422. So 347+85=422. Check: 422-85 vs 347: 12-5-0=7, 7 vs 7 same; 42-8 vs 34: 12-8-1=3,
        3 vs 4 differ; wrong. Wait, redo: 347+85: ... 432. So 347+85=432.
    wanted_first:
    347+85: ... 422. So 347+85=422. Check: 422-85 vs 347: want 7, 12-5-0=7 same; 42-8 vs 34: want 4,
        12-8-1=3 differ; wrong. Wait, redo: 347+85: ... 432. So 347+85=432.

Every comparison is of two digits written close together and says at once whether they are the
same, and the operand it checks against is restated step by step like the others, so a small
model never has to compare numbers far apart. In `computed_first` the wanted digit comes after
the computed one, which it equals in almost every step, so a model can learn to copy it from
there and compare a digit with itself; in `wanted_first` it is written first, so it can only be
read from the operand.
The solution always ends on its answer, so the last number of a solution is its answer.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from r1lab.tasks.base import Language, Split, TaskItem, in_test_split

QUESTION_FORMS = {
    "en": ["What is {a}{op}{b}?", "Compute {a}{op}{b}.", "{a}{op}{b}=?", "Calculate {a}{op}{b}."],
    "zh": ["{a}{op}{b}等于多少？", "计算{a}{op}{b}。", "{a}{op}{b}是多少？", "请计算{a}{op}{b}。"],
}
# the words of a solution, by language; "mixed" writes English sentences with Chinese step words
PHRASES = {
    "en": {"head": ": ", "sep": "; ", "gives": ", ", "end": ".", "so": " So ", "check": " Check: ", "vs": " vs ", "want": "want ",
           "same": " same", "differ": " differ", "right": "; right, so ", "wrong": "; wrong.", "redo": " Wait, redo: "},
    "zh": {"head": "：", "sep": "；", "gives": "，得", "end": "。", "so": "所以", "check": "验算：", "vs": "对", "want": "应为",
           "same": "相同", "differ": "不同", "right": "；正确，所以", "wrong": "；错误。", "redo": "等等，重做："},
    "mixed": {"head": ": ", "sep": "; ", "gives": ", 得", "end": ".", "so": " So ", "check": " Check: ", "vs": " vs ", "want": "want ",
              "same": " same", "differ": " differ", "right": "; right, so ", "wrong": "; wrong.",
              "redo": " Wait, redo: "},
}
CHECK_FORMS = ("computed_first", "wanted_first")  # what a check step writes first (see the module docstring)
SELF_CHECK = re.compile(r"Check:|验算[:：]")
REDO = re.compile(r"Wait, redo|等等，重做")


def has_self_check(text: str) -> bool:
    """True when the text checks a result ("Check:" / "验算："): the reflective behaviour counted
    by the evaluation's `reflection_rate`."""
    return SELF_CHECK.search(text) is not None


def caught_slip(text: str) -> bool:
    """True when a check failed and the solution redid its sum ("Wait, redo" / "等等，重做")."""
    return REDO.search(text) is not None


@dataclass(frozen=True)
class Slip:
    """One mistake in a worked solution, as a small model makes them: at step `step` (0 = the
    units) the written result is off by `delta` ("sum"), or the left operand's digit is misread
    as itself + `delta` ("copy"). The steps after it are computed right from what was written."""

    step: int
    delta: int
    kind: str = "sum"


@dataclass(frozen=True)
class ArithmeticTask:
    """Addition and subtraction of non-negative integers; subtraction keeps a >= b.

    `min_digits`..`max_digits` bound each operand's digit count; the difficulty of an item is
    its longer operand's digit count. A question is in Chinese with probability `zh_share`,
    else in English. One in `1/test_share` operand pairs is held out, in both languages.
    """

    min_digits: int = 1
    max_digits: int = 4
    ops: tuple[str, ...] = ("+", "-")
    zh_share: float = 0.0
    test_share: float = 0.1
    name: str = "arithmetic"

    def __post_init__(self):
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"arithmetic: need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}")
        if not self.ops or set(self.ops) - {"+", "-"}:
            raise ValueError(f"arithmetic: ops must be a non-empty subset of '+', '-', got {self.ops!r}")
        if not 0 <= self.zh_share <= 1:
            raise ValueError(f"arithmetic: zh_share must be in [0, 1], got {self.zh_share}")

    def sample(self, rng: random.Random, split: Split = "train", language: str | None = None) -> TaskItem:
        """One item of `split`; its question language is drawn from `zh_share` unless given."""
        while True:
            op = rng.choice(self.ops)
            a = _number(rng, rng.randint(self.min_digits, self.max_digits))
            b = _number(rng, rng.randint(self.min_digits, self.max_digits))
            if op == "-" and a < b:
                a, b = b, a
            drawn = "zh" if rng.random() < self.zh_share else "en"
            if in_test_split(f"{a}{op}{b}", self.test_share) == (split == "test"):
                return self.item(a, op, b, rng, language or drawn)

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def item(self, a: int, op: str, b: int, rng: random.Random | None = None, language: str = "en") -> TaskItem:
        if language not in QUESTION_FORMS:
            raise ValueError(f"arithmetic: a question is asked in 'en' or 'zh', got {language!r}")
        forms = QUESTION_FORMS[language]
        form = forms[0] if rng is None else rng.choice(forms)
        answer = str(a + b if op == "+" else a - b)
        return TaskItem(
            task=self.name,
            question=form.format(a=a, op=op, b=b),
            answer=answer,
            solution=worked_solution(a, op, b, language),
            fields={"a": a, "b": b, "op": op, "digits": max(len(str(a)), len(str(b))), "language": language},
        )

    def render_solution(self, item: TaskItem, language: Language | None = None, check: bool = False) -> str:
        """The item's worked solution in `language` (default: the question's), checked or not."""
        f = item.fields
        return worked_solution(f["a"], f["op"], f["b"], language or item.language, check=check)

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        return normalize_number(answer_text) == item.answer


def worked_solution(a: int, op: str, b: int, language: Language = "en", check: bool = False,
                    slip: Slip | None = None, check_form: str = "computed_first") -> str:
    """The digit-by-digit solution of `a op b` (see the module docstring), in `language`.

    `check` verifies the result by the inverse operation before concluding, each step in
    `check_form`. `slip` puts one mistake into the first attempt (see `Slip`): without a check
    the solution ends on the wrong result; with one, the check catches it and the solution redoes
    the sum correctly. A slip that would make the computation leave the non-negative integers is
    ignored.
    """
    if check_form not in CHECK_FORMS:
        raise ValueError(f"arithmetic: check_form must be one of {', '.join(CHECK_FORMS)}, got {check_form!r}")
    words = PHRASES[language]
    steps, result = _column_steps(a, op, b, slip)
    if result is None or (check and op == "+" and result < b):  # a slip these operands cannot take
        steps, result = _column_steps(a, op, b)
    conclusion = words["so"] + f"{a}{op}{b}={result}" + words["end"]
    text = _render(a, op, b, steps, words) + words["end"] + conclusion
    if not check:
        return text
    inverse = "-" if op == "+" else "+"
    compared, holds = _check_steps(result, inverse, b, a)
    gives = words["gives"].rstrip("得")
    text += words["check"] + words["sep"].join(
        f"{head}{words['vs']}{target}{words['head']}"
        + (f"{step}{gives}{digit}{words['vs']}{want}" if check_form == "computed_first"
           else f"{words['want']}{want}{gives}{step}")
        + (words["same"] if digit == want else words["differ"]) for head, target, step, digit, want in compared)
    if holds:
        return text + words["right"] + f"{a}{op}{b}={result}" + words["end"]
    redo = _render(a, op, b, _column_steps(a, op, b)[0], words)
    truth = a + b if op == "+" else a - b
    return text + words["wrong"] + words["redo"] + redo + words["end"] + words["so"] + f"{a}{op}{b}={truth}" + words["end"]


def _check_steps(result: int, inverse: str, b: int, a: int) -> tuple[list[tuple[str, str, str, str, str]], bool]:
    """The check `result inverse b` against `a`, one column at a time from the right, each step
    restating what is left of the three numbers and setting the digit it computes beside a's
    digit: [(head, a's part, step, digit, a's digit)] up to the first digit that differs, and
    whether none did."""
    compared, left, right, target, carry = [], str(result), str(b), str(a), 0
    while left or right or target or (inverse == "+" and carry):
        x, y = int((left or "0")[-1]), int((right or "0")[-1])
        head = f"{left or 0}{inverse}{right or 0}"
        if inverse == "+":
            total = x + y + carry
            step, digit, carry = f"{x}+{y}+{carry}={total}", total % 10, total // 10
        else:
            borrowed = x - y - carry < 0
            top = x + 10 if borrowed else x
            digit = top - y - carry
            step, carry = f"{top}-{y}-{carry}={digit}", int(borrowed)
        want = (target or "0")[-1]
        compared.append((head, target or "0", step, str(digit), want))
        if str(digit) != want:
            return compared, False
        left, right, target = left[:-1], right[:-1], target[:-1]
    return compared, carry == 0


def _column_steps(a: int, op: str, b: int, slip: Slip | None = None) -> tuple[list[tuple[str, str, str]], int | None]:
    """[(head, step, partial result)] of the column method, and the result (None: impossible)."""
    steps, digits, carry, index = [], "", 0, 0
    left, right = str(a), str(b)
    while left or right or (op == "+" and carry):
        here = slip if slip is not None and slip.step == index else None
        if here is not None and here.kind == "copy" and left:
            left = left[:-1] + str((int(left[-1]) + here.delta) % 10)
        x, y = int((left or "0")[-1]), int((right or "0")[-1])
        head = f"{left or 0}{op}{right or 0}"
        delta = here.delta if here is not None and here.kind == "sum" else 0
        if op == "+":
            total = x + y + carry + delta
            if total < 0:
                return steps, None
            step, digit, carry = f"{x}+{y}+{carry}={total}", total % 10, total // 10
        else:
            borrowed = x - y - carry < 0
            top = x + 10 if borrowed else x
            digit = top - y - carry + delta
            if not 0 <= digit <= 9:
                return steps, None
            step, carry = f"{top}-{y}-{carry}={digit}", int(borrowed)
        digits = f"{digit}{digits}"
        steps.append((head, step, digits))
        left, right, index = left[:-1], right[:-1], index + 1
    if op == "-" and carry:  # a misread made the left operand smaller than the right one
        return steps, None
    return steps, int(digits)


def _render(a: int, op: str, b: int, steps: list[tuple[str, str, str]], words: dict) -> str:
    """'347+85: 7+5+0=12, 2; 34+8: 4+8+1=13, 32; 3+0: 3+0+1=4, 432' in the language's words
    (the first step's head is the expression itself)."""
    parts = [f"{step}{words['gives']}{partial}" for _, step, partial in steps]
    heads = [f"{a}{op}{b}"] + [head for head, _, _ in steps[1:]]
    return words["sep"].join(f"{head}{words['head']}{part}" for head, part in zip(heads, parts))


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
