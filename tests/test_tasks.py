"""The tiny world's tasks: worked solutions are right, splits are disjoint, verifiers are safe."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1lab.tasks import (
    TASKS,
    ArithmeticTask,
    ChatTask,
    CountdownTask,
    check_countdown,
    evaluate_expression,
    get_task,
)
from r1lab.tasks.arithmetic import normalize_number, worked_solution
from r1lab.tasks.countdown import ExpressionError


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 99999), st.integers(0, 99999), st.sampled_from(["+", "-"]), st.sampled_from(["en", "zh", "mixed"]))
def test_worked_solution_ends_with_the_true_result(a, b, op, language):
    if op == "-" and a < b:
        a, b = b, a
    text = worked_solution(a, op, b, language)
    expected = a + b if op == "+" else a - b
    assert text.rstrip("。.").endswith(f"={expected}")


def test_worked_solution_restates_the_operands_one_digit_shorter_each_step():
    assert worked_solution(347, "+", 85) == "347+85: 7+5+0=12, 2; 34+8: 4+8+1=13, 32; 3+0: 3+0+1=4, 432. So 347+85=432."
    assert worked_solution(742, "-", 385) == "742-385: 12-5-0=7, 7; 74-38: 14-8-1=5, 57; 7-3: 7-3-1=3, 357. So 742-385=357."


def test_chinese_and_mixed_solutions_use_both_scripts_as_intended():
    assert "得" in worked_solution(12, "+", 5, "zh") and "So" not in worked_solution(12, "+", 5, "zh")
    mixed = worked_solution(12, "+", 5, "mixed")
    assert "得" in mixed and "So" in mixed


@pytest.mark.parametrize("language", ["en", "zh"])
def test_arithmetic_items_carry_their_question_language(language):
    task = ArithmeticTask(zh_share=1.0 if language == "zh" else 0.0)
    for item in task.items(50, seed=4):
        assert item.fields["language"] == item.language == language
        assert item.solution == worked_solution(item.fields["a"], item.fields["op"], item.fields["b"], language)
        has_chinese = any("\u4e00" <= ch <= "\u9fff" for ch in item.question)
        assert has_chinese == (language == "zh")


def test_both_languages_share_one_held_out_split():
    english, chinese = ArithmeticTask(zh_share=0.0), ArithmeticTask(zh_share=1.0)
    key = lambda item: (item.fields["a"], item.fields["op"], item.fields["b"])  # noqa: E731
    train = {key(i) for i in english.items(3000, "train", seed=0)} | {key(i) for i in chinese.items(3000, "train", seed=1)}
    test = {key(i) for i in english.items(300, "test", seed=0)} | {key(i) for i in chinese.items(300, "test", seed=1)}
    assert not train & test


def test_every_built_in_task_gives_every_item_a_language():
    for name in TASKS:
        for item in get_task(name).items(30, "train", seed=0) + get_task(name).items(10, "test", seed=0):
            assert item.fields["language"] in ("en", "zh"), name


@pytest.mark.parametrize("task", [ArithmeticTask(), CountdownTask(), ChatTask()])
def test_train_and_test_splits_are_disjoint_and_deterministic(task):
    train = {item.question for item in task.items(2000, "train", seed=0)}
    test = task.items(200, "test", seed=0)
    assert not train & {item.question for item in test}
    assert [i.question for i in test] == [i.question for i in task.items(200, "test", seed=0)]


def test_arithmetic_items_verify_their_own_answer_and_respect_digit_bounds():
    task = ArithmeticTask(min_digits=2, max_digits=3)
    for item in task.items(300, "train", seed=3):
        assert task.verify(item.answer, item)
        assert not task.verify(str(int(item.answer) + 1), item)
        assert 2 <= item.fields["digits"] <= 3
        if item.fields["op"] == "-":
            assert item.fields["a"] >= item.fields["b"]


def test_normalize_number_ignores_spacing_commas_and_trailing_zero_decimals():
    assert normalize_number(" 1,234 ") == "1234"
    assert normalize_number("4 3 2") == "432"
    assert normalize_number("12.0") == "12"
    assert normalize_number("no digits") is None


def test_countdown_targets_are_reachable_with_the_given_numbers():
    task = CountdownTask(count=4)
    for item in task.items(200, seed=1):
        assert check_countdown(item.answer, item.fields["numbers"], item.fields["target"]) == (True, True)


def test_countdown_checks_numbers_used_and_value():
    assert check_countdown("(3+4)*2", [2, 3, 4], 14) == (True, True)
    assert check_countdown("3+4+2", [2, 3, 4], 14) == (True, False)  # well formed, wrong value
    assert check_countdown("3*4", [2, 3, 4], 12) == (False, False)  # a number left unused
    assert check_countdown("3*4*4", [2, 3, 4], 48) == (False, False)  # a number used twice


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "2**100", "a+1", "1/2", "[1]", "", "lambda: 1"])
def test_countdown_expressions_never_reach_eval(text):
    with pytest.raises(ExpressionError):
        evaluate_expression(text)


def test_chat_items_carry_a_worse_rejected_answer():
    for item in ChatTask().items(100, seed=2):
        assert item.answer == item.fields["chosen"] != item.fields["rejected"]
        assert item.fields["kind"] in {"thanks", "greeting", "describe", "color", "listing"}


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="arithmetic"):
        get_task("algebra")


def test_generators_are_seeded():
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert ArithmeticTask().sample(rng_a) == ArithmeticTask().sample(rng_b)
