"""Rule rewards: what counts as a correct answer and a correct format, and containment of bad functions."""

import threading
import time

import pytest

from r1lab.rewards import (
    RewardFunction,
    RewardFunctionError,
    accuracy_reward,
    countdown_reward,
    format_reward,
    mixes_languages,
    reward_functions,
    score,
    soft_format_reward,
    tag_count_reward,
)

GOOD = " <think> 3+4: 3+4+0=7, 7. So 3+4=7. </think> <answer> 7 </answer>"


def test_accuracy_reads_the_answer_tag_by_default():
    completions = [GOOD, " The answer is 7.", " <think> x </think> <answer> 8 </answer>"]
    assert accuracy_reward(None, completions, answer=["7", "7", "7"]) == [1.0, 0.0, 0.0]


def test_accuracy_can_read_boxed_or_the_last_number():
    assert accuracy_reward(None, [r"so \boxed{42}."], answer=["42"], extract="boxed") == [1.0]
    assert accuracy_reward(None, ["it is 41, no, 42"], answer=["42"], extract="last_number") == [1.0]


def test_accuracy_modes_exact_numeric_and_math_equivalence():
    text = r" <think> . </think> <answer> \frac{1}{2} </answer>"
    assert accuracy_reward(None, [text], answer=["0.5"], mode="math") == [1.0]
    assert accuracy_reward(None, [text], answer=["0.5"], mode="numeric") == [0.0]
    assert accuracy_reward(None, [" <answer> 1,000 </answer>"], answer=["1000"], mode="numeric") == [1.0]
    assert accuracy_reward(None, [" <answer> 1,000 </answer>"], answer=["1000"], mode="exact") == [0.0]


def test_accuracy_is_none_where_there_is_no_ground_truth():
    assert accuracy_reward(None, [GOOD], answer=[None]) == [None]


def test_strict_format_wants_think_then_answer_and_nothing_else():
    assert format_reward(None, [GOOD]) == [1.0]
    assert format_reward(None, [GOOD + " extra"]) == [0.0]
    assert format_reward(None, [" <answer> 7 </answer>"]) == [0.0]
    assert format_reward(None, [" <think> a <think> b </think> <answer> 7 </answer>"]) == [0.0]
    assert soft_format_reward(None, ["hi" + GOOD + " bye"]) == [1.0]


def test_tag_count_gives_partial_credit():
    assert tag_count_reward(None, [GOOD, " <think> only", " <think> <think>"]) == [1.0, 0.25, 0.0]


def test_countdown_reward_follows_tinyzero_scheme():
    numbers, target = [[2, 3, 4]] * 3, [14] * 3
    completions = [" <answer> (3+4)*2 </answer>", " <answer> 3+4+2 </answer>", " <answer> import os </answer>"]
    assert countdown_reward(None, completions, numbers=numbers, target=target) == [1.0, 0.1, 0.0]


def test_language_mixing_needs_both_scripts_outside_tags():
    assert mixes_languages("7+5=12, 得2. So 12")
    assert not mixes_languages("<think> 7+5=12，得2 </think>")
    assert not mixes_languages("So 7+5=12")


def test_weighted_sum_and_per_function_metrics():
    functions = reward_functions(["accuracy", "format"], [2.0, 0.5])
    totals, metrics, _ = score(functions, ["q"] * 2, [GOOD, " 7"], {"answer": ["7", "7"]})
    assert totals == [2.5, 0.0]
    assert metrics["rewards/accuracy/mean"] == 0.5 and metrics["rewards/format/mean"] == 0.5


def test_none_drops_out_of_the_function_statistics():
    only_first = RewardFunction("partial", lambda p, c, **_: [1.0, None])
    totals, metrics, _ = score([only_first], ["q", "q"], ["a", "b"], {})
    assert totals == [1.0, 0.0] and metrics["rewards/partial/mean"] == 1.0


def test_a_raising_reward_scores_zero_for_that_sample_and_is_counted(caplog):
    def fragile(prompts, completions, **_):
        if any("boom" in c for c in completions):
            raise RuntimeError("cannot score this")
        return [1.0] * len(completions)

    function = RewardFunction("fragile", fragile)
    with caplog.at_level("WARNING", logger="r1lab.rewards"):
        totals, metrics, _ = score([function], ["q"] * 3, ["ok", "boom", "ok"], {})
        score([function], ["q"], ["boom"], {})
    assert totals == [1.0, 0.0, 1.0]
    assert metrics["reward_failures/fragile"] == 1
    assert function.failures == 2
    assert sum("fragile" in r.message for r in caplog.records) == 1  # logged once, with its traceback
    assert "RuntimeError: cannot score this" in caplog.records[0].message


def test_a_hanging_reward_times_out_and_scores_zero():
    def slow(prompts, completions, **_):
        if any("slow" in c for c in completions):
            time.sleep(3)
        return [1.0] * len(completions)

    function = RewardFunction("slow", slow, timeout=0.2)
    started = time.perf_counter()
    totals, metrics, _ = score([function], ["q", "q"], ["fast", "slow"], {})
    assert totals == [1.0, 0.0] and metrics["reward_failures/slow"] == 1
    assert time.perf_counter() - started < 2.5


def test_hung_calls_do_not_starve_later_ones():
    release = threading.Event()

    def stuck(prompts, completions, **_):
        release.wait(30)  # hangs until the test ends
        return [1.0] * len(completions)

    try:
        for _ in range(6):  # more hung calls than any small worker pool has workers
            totals = score([RewardFunction("stuck", stuck, timeout=0.05)], ["q"], ["a"], {})[0]
            assert totals == [0.0]
        fine = RewardFunction("fine", lambda p, c, **_: [0.5] * len(c), timeout=1.0)
        assert score([fine], ["q", "q"], ["a", "b"], {})[0] == [0.5, 0.5]
    finally:
        release.set()


def test_a_reward_returning_the_wrong_length_is_an_error_that_names_it():
    with pytest.raises(RewardFunctionError, match="'short'"):
        score([RewardFunction("short", lambda p, c, **_: [1.0])], ["q", "q"], ["a", "b"], {})


def test_unknown_reward_names_list_the_known_ones():
    with pytest.raises(ValueError, match="accuracy"):
        reward_functions(["acuracy"])


R1_EN = " <think> 347+85: 7+5+0=12, 2; 34+8: 4+8+1=13, 32; 3+0: 3+0+1=4, 432. So 347+85=432. </think> The answer is 432."
R1_ZH = " <think> 347+85：7+5+0=12，得2；34+8：4+8+1=13，得32；3+0：3+0+1=4，得432。所以347+85=432。 </think> 答案是432。"


def test_r1_format_wants_reasoning_then_a_summary_and_no_answer_tags():
    from r1lab.rewards import follows_r1_format, r1_format_reward

    assert r1_format_reward(None, [R1_EN, R1_ZH]) == [1.0, 1.0]
    assert not follows_r1_format(" <think> only reasoning </think> ")  # no summary
    assert not follows_r1_format(" <think> a </think> <answer> 432 </answer>")  # R1-Zero's tags
    assert not follows_r1_format(" The answer is 432.")  # no reasoning
    assert not follows_r1_format(" <think> a <think> b </think> The answer is 4.")


def test_the_r1_summary_gives_the_answer_in_either_language():
    from r1lab.rewards import answer_in_summary

    assert answer_in_summary(R1_EN) == "432" and answer_in_summary(R1_ZH) == "432"
    assert answer_in_summary(" <think> x </think> The answer is (3+4)*2.") == "(3+4)*2"
    assert answer_in_summary(" <think> x </think> 17") == "17" and answer_in_summary(" <think> x") is None
    assert accuracy_reward(None, [R1_EN, R1_ZH, R1_EN], answer=["432", "432", "431"], extract="summary") == [1.0, 1.0, 0.0]
    assert countdown_reward(None, [" <think> x </think> The answer is (3+4)*2."], numbers=[[2, 3, 4]], target=[14],
                            extract="summary") == [1.0]
