"""Code: requests for a short Python function, checked by hidden test cases.

The seed: "for LeetCode even a compiler is the reward source". A request names the function and
its arguments and says what it returns ("Write a Python function larger(a, b) that returns the
larger of a and b."); the item's `tests` are assert statements that call it on inputs the request
does not show. A program is right when every test passes; the code reward scores the share that
pass. Programs run only in r1lab's sandbox (`r1lab.rewards.sandbox`), never in this process.

Each kind of function has a right body and typical wrong ones (the wrong operator, a flipped
comparison, the wrong element), so a corpus can hold correct and incorrect solutions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from r1lab.tasks.base import Language, Split, TaskItem, in_test_split

WORDS = ["cat", "sun", "tree", "apple", "river", "stone", "moon", "bread", "paper", "light"]


@dataclass(frozen=True)
class FunctionKind:
    """One kind of requested function: its names, argument names, what it returns (en, zh),
    right bodies, typical wrong bodies, how to draw test inputs, and the reference behaviour."""

    names: tuple[str, ...]
    args: tuple[tuple[str, ...], ...]
    returns: str  # "the larger of {0} and {1}", the argument names filled in
    returns_zh: str
    right: tuple[str, ...]
    wrong: tuple[str, ...]
    inputs: Callable[[random.Random, int], tuple]  # (rng, test case index) -> arguments
    reference: Callable


def _ints(rng, case):
    """Case 0: a > b, case 1: a < b, else any; never inputs where a wrong body could pass."""
    while True:
        a, b = rng.randint(-9, 30), rng.randint(-9, 30)
        if a == b or 0 in (a, b) or a * b == a + b or (case == 0 and a < b) or (case == 1 and a > b):
            continue
        return a, b


def _int(rng, case):
    """Case 0: positive and even, case 1: negative, case 2: positive and odd."""
    while True:
        n = rng.randint(3, 40) * (-1 if case == 1 else 1)
        if case == 1 or n % 2 == (0 if case == 0 else 1):
            return (n,)


def _word(rng, case):
    return ("".join(rng.sample(WORDS, 2)),)


def _two_words(rng, case):
    return tuple(rng.sample(WORDS, 2))


def _numbers(rng, case):
    """Distinct numbers; in case 0 all positive, the largest neither first nor last."""
    while True:
        values = rng.sample(range(2, 40) if case == 0 else range(-9, 40), rng.randint(3, 5))
        if case != 0 or max(values) not in (values[0], values[-1]):
            return (values,)


def _numbers_and_one(rng, case):
    """A list and one of its members, which appears at least twice in case 0."""
    values = [rng.choice([1, 2, 3, 4]) for _ in range(rng.randint(4, 7))]
    x = rng.choice(values)
    if case == 0 and values.count(x) < 2:
        values[values.index(x) - 1] = x
    return values, x


INT2 = (("a", "b"), ("x", "y"), ("m", "n"))
INT1 = (("n",), ("x",), ("k",))
STR1 = (("s",), ("text",), ("word",))
LIST1 = (("nums",), ("values",), ("items",))

KINDS: dict[str, FunctionKind] = {
    "add": FunctionKind(("add", "plus", "add_two", "total"), INT2, "the sum of {0} and {1}", "{0}与{1}之和",
                        ("return {0} + {1}",), ("return {0} - {1}", "return {0} * {1}"), _ints, lambda a, b: a + b),
    "subtract": FunctionKind(("subtract", "minus", "difference", "take_away"), INT2, "{0} minus {1}", "{0}减{1}",
                             ("return {0} - {1}",), ("return {1} - {0}", "return {0} + {1}"), _ints,
                             lambda a, b: a - b),
    "multiply": FunctionKind(("multiply", "times", "product", "mul"), INT2, "the product of {0} and {1}",
                             "{0}与{1}之积", ("return {0} * {1}",), ("return {0} + {1}", "return {0} ** 2"), _ints,
                             lambda a, b: a * b),
    "larger": FunctionKind(("larger", "bigger", "max_of_two", "maximum"), INT2, "the larger of {0} and {1}",
                           "{0}和{1}中较大的数", ("return {0} if {0} > {1} else {1}", "return max({0}, {1})"),
                           ("return {0} if {0} < {1} else {1}", "return {0}"), _ints, max),
    "smaller": FunctionKind(("smaller", "lesser", "min_of_two", "minimum"), INT2, "the smaller of {0} and {1}",
                            "{0}和{1}中较小的数", ("return {0} if {0} < {1} else {1}", "return min({0}, {1})"),
                            ("return {0} if {0} > {1} else {1}", "return {1}"), _ints, min),
    "reverse": FunctionKind(("reverse", "backwards", "flip", "reversed_text"), STR1, "{0} reversed", "倒过来的{0}",
                            ("return {0}[::-1]",), ("return {0}", "return {0}[1:]"), _word, lambda s: s[::-1]),
    "sum_list": FunctionKind(("sum_list", "total_of", "add_all", "list_sum"), LIST1, "the sum of the numbers in {0}",
                             "{0}中所有数之和",
                             ("return sum({0})", "total = 0\n    for v in {0}:\n        total += v\n    return total"),
                             ("return len({0})", "total = 0\n    for v in {0}:\n        total = v\n    return total"),
                             _numbers, sum),
    "largest": FunctionKind(("largest", "biggest", "max_in", "top"), LIST1, "the largest number in {0}",
                            "{0}中最大的数", ("return max({0})",), ("return min({0})", "return {0}[0]"), _numbers, max),
    "first": FunctionKind(("first", "head", "first_item", "front"), LIST1, "the first item of {0}", "{0}的第一项",
                          ("return {0}[0]",), ("return {0}[1]", "return {0}[-1]"), _numbers, lambda v: v[0]),
    "last": FunctionKind(("last", "tail", "last_item", "end"), LIST1, "the last item of {0}", "{0}的最后一项",
                         ("return {0}[-1]",), ("return {0}[0]", "return {0}[len({0})]"), _numbers, lambda v: v[-1]),
    "length": FunctionKind(("length", "size", "count_items", "how_many"), LIST1, "the number of items in {0}",
                           "{0}中的项数", ("return len({0})",), ("return len({0}) - 1", "return sum({0})"), _numbers, len),
    "is_even": FunctionKind(("is_even", "even", "check_even", "even_number"), INT1, "True when {0} is even",
                            "{0}为偶数时返回True", ("return {0} % 2 == 0",), ("return {0} % 2 == 1", "return {0} > 0"),
                            _int, lambda n: n % 2 == 0),
    "square": FunctionKind(("square", "squared", "sq", "power_two"), INT1, "{0} times {0}", "{0}乘{0}",
                           ("return {0} * {0}",), ("return {0} * 2", "return {0} + {0}"), _int, lambda n: n * n),
    "double": FunctionKind(("double", "twice", "times_two", "doubled"), INT1, "two times {0}", "{0}的两倍",
                           ("return 2 * {0}", "return {0} + {0}"), ("return {0} * {0}", "return {0} + 2"), _int,
                           lambda n: 2 * n),
    "absolute": FunctionKind(("absolute", "abs_value", "magnitude", "positive"), INT1, "the absolute value of {0}",
                             "{0}的绝对值", ("return {0} if {0} >= 0 else -{0}", "return abs({0})"),
                             ("return -{0}", "return {0}"), _int, abs),
    "shout": FunctionKind(("shout", "upper", "loud", "caps"), STR1, "{0} in capital letters", "{0}的大写形式",
                          ("return {0}.upper()",), ("return {0}.lower()", "return {0}"), _word, str.upper),
    "join": FunctionKind(("join", "glue", "combine", "concat"), (("s", "t"), ("first", "second"), ("left", "right")),
                         "{0} followed by {1}", "{0}后接{1}", ("return {0} + {1}",), ("return {1} + {0}", "return {0}"),
                         _two_words, lambda s, t: s + t),
    "count_of": FunctionKind(("count_of", "occurrences", "times_in", "count"), (("nums", "x"), ("items", "v")),
                             "how many times {1} appears in {0}", "{1}在{0}中出现的次数", ("return {0}.count({1})",),
                             ("return len({0})", "return {1} in {0}"), _numbers_and_one, lambda v, x: v.count(x)),
}
REQUEST_FORMS = ["Write a Python function {sig} that returns {what}.", "Define {sig} in Python so that it returns {what}.",
                 "Implement the Python function {sig}: it returns {what}."]


@dataclass(frozen=True)
class CodeTask:
    """Function requests with `tests` hidden test cases each; `answer` is a right program.

    Completions are read as programs (`answer_format`): the evaluation extracts the code with
    the code reward's own rule, then every hidden test must pass in the sandbox.
    """

    answer_format: ClassVar[str] = "code"
    tests_per_item: int = 3
    test_share: float = 0.15
    name: str = "code"

    def sample(self, rng: random.Random, split: Split = "train") -> TaskItem:
        while True:
            kind_name = rng.choice(list(KINDS))
            kind = KINDS[kind_name]
            function, args = rng.choice(kind.names), rng.choice(kind.args)
            form = rng.choice(REQUEST_FORMS)
            question = form.format(sig=f"{function}({', '.join(args)})", what=kind.returns.format(*args))
            if in_test_split(question, self.test_share) == (split == "test"):
                return self.item(kind_name, function, args, question, rng)

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def item(self, kind_name: str, function: str, args: tuple[str, ...], question: str, rng: random.Random) -> TaskItem:
        kind = KINDS[kind_name]
        tests, seen = [], set()
        while len(tests) < self.tests_per_item:
            inputs = kind.inputs(rng, len(tests))
            call = f"{function}({', '.join(map(repr, inputs))})"
            if call not in seen:
                seen.add(call)
                tests.append(f"assert {call} == {kind.reference(*inputs)!r}")
        program = program_text(function, args, kind.right[0])
        return TaskItem(self.name, question, program, render_code_solution(kind_name, function, args, "en"),
                        {"tests": tests, "entry_point": function, "kind": kind_name, "function": function,
                         "args": list(args), "language": "en"})

    def render_solution(self, item: TaskItem, language: Language | None = None) -> str:
        f = item.fields
        return render_code_solution(f["kind"], f["function"], tuple(f["args"]), language or item.language)

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        """Every hidden test passes when the program runs in the sandbox."""
        return self.verify_many([answer_text], [item])[0]

    def verify_many(self, programs: list[str], items: list[TaskItem]) -> list[bool]:
        from r1lab.rewards.sandbox import execute_many  # programs run only in the sandbox

        results = execute_many(programs, [list(item.fields["tests"]) for item in items], timeout=2.0)
        return [bool(result.passed) for result in results]


def program_text(function: str, args: tuple[str, ...], body: str) -> str:
    """'def larger(a, b):\\n    return a if a > b else b' from a body written with {0}, {1} for the arguments."""
    return f"def {function}({', '.join(args)}):\n    {body.format(*args)}"


def plan_text(kind_name: str, function: str, args: tuple[str, ...], language: Language = "en") -> str:
    """The thinking before the program: what the function returns, restated from the request."""
    kind = KINDS[kind_name]
    sig = f"{function}({', '.join(args)})"
    if language == "zh":
        return f"{sig}应返回{kind.returns_zh.format(*args)}。"
    return f"{sig} should return {kind.returns.format(*args)}."


def render_code_solution(kind_name: str, function: str, args: tuple[str, ...], language: Language = "en") -> str:
    """The plan, then the right program: the worked solution of a code request."""
    return f"{plan_text(kind_name, function, args, language)}\n{program_text(function, args, KINDS[kind_name].right[0])}"
