"""Self-checking worked solutions: a check by the inverse operation, a slip it catches, the redo."""

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1lab.tasks import ArithmeticTask, caught_slip, has_self_check, worked_solution
from r1lab.tasks.arithmetic import Slip
from r1lab.tasks.judge import response_answer


def test_a_passing_check_redoes_the_sum_backwards_digit_by_digit_beside_the_first_operand():
    assert worked_solution(347, "+", 85, check=True) == (
        "347+85: 7+5+0=12, 2; 34+8: 4+8+1=13, 32; 3+0: 3+0+1=4, 432. So 347+85=432. "
        "Check: 432-85 vs 347: 12-5-0=7, 7 vs 7 same; 43-8 vs 34: 13-8-1=4, 4 vs 4 same; 4-0 vs 3: 4-0-1=3, 3 vs 3 same; "
        "right, so 347+85=432.")
    assert worked_solution(742, "-", 385, check=True).endswith(
        "Check: 357+385 vs 742: 7+5+0=12, 2 vs 2 same; 35+38 vs 74: 5+8+1=14, 4 vs 4 same; 3+3 vs 7: 3+3+1=7, 7 vs 7 same; "
        "right, so 742-385=357.")


def test_a_slip_caught_by_the_check_stops_at_the_first_differing_digit_and_the_sum_is_redone():
    text = worked_solution(347, "+", 85, check=True, slip=Slip(step=1, delta=-1))
    assert "34+8: 4+8+1=12, 22" in text and "So 347+85=422. Check: 422-85 vs 347:" in text  # the slip
    assert "42-8 vs 34: 12-8-1=3, 3 vs 4 differ; wrong. Wait, redo: 347+85: 7+5+0=12" in text
    assert "4-0 vs 3" not in text and text.endswith("So 347+85=432.")
    assert has_self_check(text) and caught_slip(text)


def test_a_check_also_compares_the_digits_the_first_operand_lacks_or_has_more():
    assert "1-0 vs 0: 1-0-1=0, 0 vs 0 same; right" in worked_solution(57, "+", 46, check=True)
    assert "Check: 999+1 vs 999: 9+1+0=10, 0 vs 9 differ; wrong." in worked_solution(999, "-", 1, check=True, slip=Slip(0, 1))


def test_the_chinese_check_uses_chinese_words():
    text = worked_solution(347, "+", 85, "zh", check=True, slip=Slip(step=1, delta=-1))
    assert "验算：422-85对347：12-5-0=7，7对7相同；42-8对34：12-8-1=3，3对4不同；错误。等等，重做：" in text
    assert text.endswith("所以347+85=432。")
    ok = worked_solution(347, "+", 85, "zh", check=True)
    assert ok.endswith("4-0对3：4-0-1=3，3对3相同；正确，所以347+85=432。") and has_self_check(ok) and not caught_slip(ok)


def test_a_slip_without_a_check_ends_on_the_wrong_result():
    text = worked_solution(742, "-", 385, slip=Slip(step=1, delta=1, kind="copy"))
    assert "75-38" in text and text.endswith("So 742-385=367.")
    assert not has_self_check(text)


def test_a_slip_that_would_leave_the_integers_is_ignored():
    assert worked_solution(5, "-", 5, slip=Slip(step=0, delta=-1)) == worked_solution(5, "-", 5)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 999999), st.integers(0, 999999), st.sampled_from(["+", "-"]), st.sampled_from(["en", "zh", "mixed"]),
       st.integers(0, 5), st.sampled_from([-1, 1]), st.sampled_from(["sum", "copy"]))
def test_a_checked_solution_always_concludes_with_the_true_result(a, b, op, language, step, delta, kind):
    if op == "-" and a < b:
        a, b = b, a
    text = worked_solution(a, op, b, language, check=True, slip=Slip(step, delta, kind))
    truth = a + b if op == "+" else a - b
    assert text.rstrip("。.").endswith(f"={truth}")
    assert response_answer(text) == str(truth)  # the last number is the answer
    assert has_self_check(text)


def test_self_check_detection_reads_both_languages_and_nothing_else():
    assert has_self_check("... 432. Check: 432-85: ...") and has_self_check("得432。验算：432-85：")
    assert not has_self_check("347+85: 7+5+0=12, 2. So 347+85=432.")
    assert not has_self_check("I will check the answer.")


def test_render_solution_gives_the_item_in_either_language_checked_or_not():
    task = ArithmeticTask(zh_share=1.0)
    item = task.item(347, "+", 85, random.Random(0), "zh")
    assert task.render_solution(item) == item.solution == worked_solution(347, "+", 85, "zh")
    assert task.render_solution(item, "en", check=True) == worked_solution(347, "+", 85, "en", check=True)


@pytest.mark.parametrize("language", ["fr", "mixed"])
def test_a_question_is_asked_in_english_or_chinese_only(language):
    with pytest.raises(ValueError, match="'en' or 'zh'"):
        ArithmeticTask().item(1, "+", 2, language=language)


def test_the_wanted_first_check_writes_the_operands_digit_before_computing_its_own():
    assert worked_solution(347, "+", 85, check=True, check_form="wanted_first").endswith(
        "Check: 432-85 vs 347: want 7, 12-5-0=7 same; 43-8 vs 34: want 4, 13-8-1=4 same; 4-0 vs 3: want 3, 4-0-1=3 same; "
        "right, so 347+85=432.")
    text = worked_solution(347, "+", 85, check=True, slip=Slip(step=1, delta=-1), check_form="wanted_first")
    assert "42-8 vs 34: want 4, 12-8-1=3 differ; wrong. Wait, redo: 347+85: 7+5+0=12" in text
    assert text.endswith("So 347+85=432.") and caught_slip(text)
    zh = worked_solution(347, "+", 85, "zh", check=True, slip=Slip(step=1, delta=-1), check_form="wanted_first")
    assert "验算：422-85对347：应为7，12-5-0=7相同；42-8对34：应为4，12-8-1=3不同；错误。等等，重做：" in zh


def test_the_check_form_changes_only_the_checks_text():
    from r1lab.tasks.corpus import CorpusMix, documents

    default = list(itertools.islice(documents(3), 400))
    wanted = list(itertools.islice(documents(3, CorpusMix(check_form="wanted_first")), 400))
    assert [kind for kind, _ in default] == [kind for kind, _ in wanted]
    differing = [(d, w) for (_, d), (_, w) in zip(default, wanted) if d != w]
    assert differing and all(has_self_check(d) and has_self_check(w) for d, w in differing)


def test_an_unknown_check_form_is_one_clear_error():
    from r1lab.tasks.corpus import CorpusMix

    with pytest.raises(ValueError, match="check_form must be one of computed_first, wanted_first, got 'backwards'"):
        worked_solution(347, "+", 85, check=True, check_form="backwards")
    with pytest.raises(ValueError, match="corpus: check_form"):
        CorpusMix(check_form="backwards")


def test_check_step_statistics_tell_a_copied_wanted_digit_and_a_wrong_verdict_apart():
    from r1lab.pipelines.tiny_model_card import check_step_statistics

    right = worked_solution(347, "+", 85, check=True)
    # the wanted digit copied from the computed 3 (the operand's is 4), and a verdict that contradicts its digits
    copied = "432-85 vs 347: 12-5-0=7, 7 vs 7 same; 42-8 vs 34: 12-8-1=3, 3 vs 3 same; 4-0 vs 3: 4-0-1=3, 3 vs 3 differ"
    figures = check_step_statistics([right, "So 347+85=422. Check: " + copied])
    assert figures == {"check_steps": 6, "check_wanted_not_operands_share": 1 / 6,
                       "check_wanted_copied_from_computed_share": 1 / 6, "check_verdict_wrong_share": 1 / 6}
    wanted = worked_solution(347, "+", 85, check=True, slip=Slip(step=1, delta=-1), check_form="wanted_first")
    assert check_step_statistics([wanted]) == {"check_steps": 2, "check_wanted_not_operands_share": 0.0,
                                               "check_wanted_copied_from_computed_share": 0.0,
                                               "check_verdict_wrong_share": 0.0}
