"""Countdown: combine the given numbers with + - * (each exactly once) to reach a target.

Several expressions are correct, so the verifier evaluates the model's expression instead of
comparing strings. Evaluation walks Python's `ast` of the expression and allows only integer
literals, + - *, unary minus and parentheses: model text is never passed to `eval`.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from r1lab.tasks.base import Split, TaskItem, in_test_split


class ExpressionError(ValueError):
    """An expression that is not made of integers, + - *, and parentheses."""


def evaluate_expression(text: str, max_length: int = 200) -> tuple[int, list[int]]:
    """The value of an arithmetic expression and the integer literals it uses, safely.

    Raises ExpressionError for anything but integers, + - *, unary minus and parentheses.
    """
    text = text.strip().replace("×", "*").replace("x", "*").rstrip("=").strip()
    if not text or len(text) > max_length:
        raise ExpressionError(f"expression is empty or longer than {max_length} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"not an expression: {text!r}") from error
    numbers: list[int] = []

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            numbers.append(node.value)
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if abs(left) > 10**9 or abs(right) > 10**9:  # no huge products from nested *
                raise ExpressionError("numbers too large")
            return left * right
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ExpressionError(f"only integers, + - * and parentheses are allowed, found {type(node).__name__}")

    return walk(tree.body), numbers


def check_countdown(expression: str, numbers: list[int], target: int) -> tuple[bool, bool]:
    """(well_formed, correct): well-formed means it parses and uses exactly the given numbers."""
    try:
        value, used = evaluate_expression(expression)
    except ExpressionError:
        return False, False
    well_formed = Counter(used) == Counter(numbers)
    return well_formed, well_formed and value == target


@dataclass(frozen=True)
class CountdownTask:
    """`count` numbers from 1..`max_number`; the target comes from a random expression over them."""

    count: int = 3
    max_number: int = 9
    test_share: float = 0.1
    name: str = "countdown"
    answer_format: ClassVar[str] = "expression"  # read format-free as the last expression, not the last number

    def __post_init__(self):
        if not 2 <= self.count <= 6 or self.max_number < 2:
            raise ValueError(f"countdown: need 2 <= count <= 6 and max_number >= 2, got {self.count}, {self.max_number}")

    def sample(self, rng: random.Random, split: Split = "train") -> TaskItem:
        while True:
            numbers = [rng.randint(1, self.max_number) for _ in range(self.count)]
            expression, steps = _random_expression(rng, numbers)
            target, _ = evaluate_expression(expression)
            key = f"{sorted(numbers)}->{target}"
            if target > 0 and in_test_split(key, self.test_share) == (split == "test"):
                return self.item(numbers, target, expression, steps)

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def item(self, numbers: list[int], target: int, expression: str, steps: list[str]) -> TaskItem:
        listed = ", ".join(map(str, numbers))
        question = f"Using the numbers {listed}, make {target}. Use each number once with + - *."
        solution = f"Numbers {listed}, target {target}: " + ", ".join(steps) + f". So {expression}={target}."
        return TaskItem(self.name, question, expression, solution, {"numbers": numbers, "target": target, "language": "en"})

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        return check_countdown(answer_text, item.fields["numbers"], item.fields["target"])[1]


def _random_expression(rng: random.Random, numbers: list[int]) -> tuple[str, list[str]]:
    """Fold the numbers in a random order with random operators; return text and the worked steps."""
    order = numbers[:]
    rng.shuffle(order)
    expression, value, steps = str(order[0]), order[0], []
    for number in order[1:]:
        op = rng.choice("+-*")
        new_value = value + number if op == "+" else value - number if op == "-" else value * number
        steps.append(f"{value}{op}{number}={new_value}")
        # parenthesise the running expression so the left-to-right fold is what gets evaluated
        wrap = op == "*" and any(c in expression for c in "+-")
        expression = f"({expression}){op}{number}" if wrap else f"{expression}{op}{number}"
        value = new_value
    return expression, steps
