"""The generative judge's format, and the code task's generator and hidden tests."""

import random

import pytest

from r1lab.tasks import CodeTask, JudgeTask, judge_prompt, parse_verdict
from r1lab.tasks.arithmetic import ArithmeticTask
from r1lab.tasks.code import KINDS, program_text
from r1lab.tasks.judge import RESPONSE_STYLES, render_response, response_answer, verdict_text


def test_the_judge_prompt_shows_question_reference_and_response_and_asks_for_a_verdict():
    prompt = judge_prompt("What is 2+3?", "5", " <think> 2+3: 2+3+0=5, 5. So 2+3=5. </think> The answer is 5.")
    assert prompt == ("Judge the response.\nResponse:\n<think> 2+3: 2+3+0=5, 5. So 2+3=5. </think> The answer is 5.\n"
                      "Question: What is 2+3?\nReference answer: 5\nVerdict:")


@pytest.mark.parametrize("given, reference, verdict", [
    ("432", "432", " 432 vs 432: 2 vs 2 same; 43 vs 43: 3 vs 3 same; 4 vs 4: 4 vs 4 same; correct."),
    ("422", "432", " 422 vs 432: 2 vs 2 same; 42 vs 43: 2 vs 3 differ; wrong."),
    ("1432", "432", " 1432 vs 432: 2 vs 2 same; 143 vs 43: 3 vs 3 same; 14 vs 4: 4 vs 4 same; 1 vs 0: 1 vs 0 differ; wrong."),
    ("32", "432", " 32 vs 432: 2 vs 2 same; 3 vs 43: 3 vs 3 same; 0 vs 4: 0 vs 4 differ; wrong."),
    (None, "5", " none vs 5; wrong."), ("-5", "5", " -5 vs 5; wrong."),
])
def test_the_verdict_compares_digit_by_digit_from_the_right_up_to_the_first_difference(given, reference, verdict):
    assert verdict_text(given, reference) == verdict
    assert parse_verdict(verdict) is (given == reference)


@pytest.mark.parametrize("text, verdict", [
    (" 5 vs 5: 5 vs 5; correct.", True), (" 4 vs 5: 4 vs 5; wrong.", False), (" none vs 5; wrong.\nJudge the", False),
    (" 4 vs 5: correct.\nwrong", True), ("incorrect", None), ("", None), (" 5 vs 5", None),
])
def test_parse_verdict_reads_the_last_verdict_word_of_the_first_line(text, verdict):
    assert parse_verdict(text) is verdict


@pytest.mark.parametrize("response, answer", [
    (" <think> 2+3=5 </think> <answer> 5 </answer>", "5"), (" <think> ... So 2+3=5. </think> The answer is 5.", "5"),
    ("答案是1,234。", "1234"), ("no number", None), ("<answer> x </answer>", None),
])
def test_the_response_answer_is_the_answer_block_or_else_the_last_number(response, answer):
    assert response_answer(response) == answer


def test_rendered_responses_cover_every_style_and_language_and_are_right_or_wrong_as_asked():
    rng = random.Random(0)
    task = ArithmeticTask(min_digits=2, max_digits=4)
    for item in task.items(60, seed=0):
        for style in RESPONSE_STYLES:
            for language in ("en", "zh"):
                right = render_response(item, style, language, True, rng)
                wrong = render_response(item, style, language, False, rng)
                assert response_answer(right) == item.answer and response_answer(wrong) != item.answer
                assert ("<answer>" in right) == (style == "r1_zero") and ("<think>" in right) == (style != "plain")
                assert ("答案是" in right) == (language == "zh" and style != "r1_zero")


def test_judge_items_are_balanced_and_their_verdict_texts_agree_with_the_label():
    items = JudgeTask().items(400, seed=1)
    assert 0.4 < sum(item.fields["verdict"] for item in items) / len(items) < 0.6
    assert {item.fields["style"] for item in items} == set(RESPONSE_STYLES)
    for item in items:
        assert item.question.startswith("Judge the response.") and item.question.endswith("Verdict:")
        assert parse_verdict(item.solution) is item.fields["verdict"]
        assert JudgeTask().verify(item.solution, item)


def test_judge_splits_follow_the_arithmetic_split():
    train = {item.question.split("\n")[-3] for item in JudgeTask().items(2000, "train")}
    test = {item.question.split("\n")[-3] for item in JudgeTask().items(200, "test")}
    assert not train & test


def run_trusted(program: str, tests: list[str]) -> bool:
    """Our own reference programs (never model output) may run in-process in a test."""
    namespace: dict = {}
    try:
        exec(program, namespace)  # noqa: S102 - the task's own bodies, not model-written code
        for test in tests:
            exec(test, namespace)  # noqa: S102
    except Exception:
        return False
    return True


def test_right_bodies_pass_every_hidden_test_and_every_typical_bug_fails_one():
    task = CodeTask()
    for item in task.items(800, seed=0) + task.items(200, "test", seed=0):
        kind, function, args = KINDS[item.fields["kind"]], item.fields["function"], tuple(item.fields["args"])
        assert len(item.fields["tests"]) == 3 and item.fields["entry_point"] == function
        for body in kind.right:
            assert run_trusted(program_text(function, args, body), item.fields["tests"]), (item.question, body)
        for body in kind.wrong:
            assert not run_trusted(program_text(function, args, body), item.fields["tests"]), (item.question, body)


def test_code_requests_name_the_function_and_splits_are_disjoint():
    task = CodeTask()
    train = task.items(2000, "train", seed=0)
    test = task.items(200, "test", seed=0)
    assert not {i.question for i in train} & {i.question for i in test}
    assert len({i.question for i in test}) >= 40  # enough distinct held-out requests
    for item in test:
        assert f"{item.fields['function']}(" in item.question and item.answer.startswith(f"def {item.fields['function']}(")
        assert item.solution.endswith(item.answer)
    assert {i.fields["kind"] for i in train} == set(KINDS)


def test_the_code_verifier_runs_programs_in_the_sandbox():
    task = CodeTask()
    items = task.items(4, seed=2)
    assert task.verify_many([item.answer for item in items], items) == [True] * 4
    assert not task.verify("def nothing():\n    pass\n", items[0])
    assert not task.verify("import sys\nsys.exit(0)\n", items[1])
