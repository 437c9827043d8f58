"""Language consistency: R1's share of target-language words in the chain of thought, one counting for
the reward and the evaluation's mixing rate."""

import pytest

from r1lab.rewards import REWARDS, language_consistency_reward, reward_functions, score
from r1lab.rewards.language import (
    language_consistency,
    language_word_counts,
    mixes_languages,
    reasoning_text,
)

ENGLISH = "<think> 7+5=12, carry 1. So the answer is 12. </think> <answer> 12 </answer>"
CHINESE = "<think>7+5=12，进1。所以答案是12。</think> <answer> 12 </answer>"
MIXED = "<think>First, 个位 7+5=12，写2进1。Then 十位 1+1=2。</think> <answer> 22 </answer>"


def test_the_chain_of_thought_is_the_think_block_to_its_end_or_the_whole_text():
    assert reasoning_text("<think> a </think> b") == " a "
    assert reasoning_text("x <think> a b") == " a b"  # never closes: to the end
    assert reasoning_text("just text") == "just text"  # no <think>: all of it
    assert reasoning_text("<think> 先算 </think> The answer is 12.") == " 先算 "  # R1's summary is not CoT


def test_one_word_per_ideograph_and_per_latin_run_of_two_or_more_letters():
    assert language_word_counts("carry 1. So the answer is 12.") == (0, 5)
    assert language_word_counts("7+5=12，进1。所以答案是12。") == (6, 0)
    assert language_word_counts("x = 2y + 3, so x - 3 = 2y") == (0, 1)  # single letters are neutral
    assert language_word_counts("2 × 3 ≥ 5，。；！") == (0, 0)  # digits, math and CJK punctuation are neutral
    assert language_word_counts("café 㐀") == (1, 1)  # accented Latin; CJK extension A
    assert language_word_counts("<answer> 好 </answer>") == (1, 0)  # tags are not words


def test_consistency_is_the_target_share_of_the_words_of_the_chain_of_thought():
    assert language_consistency(ENGLISH, "en") == 1.0 and language_consistency(ENGLISH, "zh") == 0.0
    assert language_consistency(CHINESE, "zh") == 1.0
    # First, Then | 个 位 写 进 十 位: 2 English words, 6 Chinese
    assert language_consistency(MIXED, "en") == 2 / 8 and language_consistency(MIXED, "zh") == 6 / 8
    assert language_consistency("<think> 7+5=12, 得2. So 12 </think>", "zh") == 1 / 2
    assert language_consistency("<think> 计算 then", "en") == 1 / 3  # unclosed think counts to the end
    # the summary after </think> is not counted, however English it is
    assert language_consistency("<think> 先算 7+5 </think> The answer is twelve.", "zh") == 1.0


def test_a_chain_of_thought_without_words_has_no_consistency():
    assert language_consistency("<think> 2x+3=7, x=2 </think> The answer is 2", "en") is None
    with pytest.raises(ValueError, match="en, zh"):
        language_consistency(ENGLISH, "fr")


def test_mixing_has_one_definition_with_or_without_a_target():
    assert mixes_languages(MIXED) and mixes_languages(MIXED, "en") and mixes_languages(MIXED, "zh")
    assert not mixes_languages(ENGLISH) and not mixes_languages(ENGLISH, "en")
    assert mixes_languages(ENGLISH, "zh")  # with a target, any word outside it is a mix
    assert not mixes_languages("<think> 7+5=12 </think>", "en")  # no words: no mix
    assert not mixes_languages("<think> 计算 </think> The answer is 12.")  # only the CoT counts


def test_the_reward_takes_each_samples_language_before_the_setting():
    completions = [MIXED, MIXED, CHINESE, "<think> 1+1=2 </think>"]
    assert language_consistency_reward(None, completions, language=["en", "zh", None, "en"]) == [0.25, 0.75, None, None]
    assert language_consistency_reward(None, completions, language=["en", "zh", None, "en"],
                                       target_language="zh") == [0.25, 0.75, 1.0, None]
    assert language_consistency_reward(None, [ENGLISH], target_language="en") == [1.0]


def test_the_reward_is_registered_and_runs_through_the_scorer():
    assert REWARDS["language_consistency"] is language_consistency_reward
    functions = reward_functions(["language_consistency"])
    # countdown's `target` field reaches the reward too, and is not mistaken for a language
    totals, metrics, _ = score(functions, ["q"] * 2, [ENGLISH, MIXED], {"language": ["en", "en"], "target": [24, 24]})
    assert totals == [1.0, 0.25] and metrics["rewards/language_consistency/mean"] == pytest.approx(0.625)


def test_the_evaluation_imports_the_same_mixing_function():
    from r1lab.rewards import mixes_languages as exported
    from r1lab.rewards.parsing import mixes_languages as evaluation_import

    assert exported is mixes_languages and evaluation_import is mixes_languages
