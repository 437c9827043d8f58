"""The reward runner's isolation modes: a function that holds the GIL in C is cut at its limit in a
worker process, and the built-in parsers are linear in the completion's length."""

import re
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1lab.rewards import RewardFunction, RewardFunctionError, reward_functions, score
from r1lab.rewards.parsing import answer_in_tags, follows_soft_format, follows_strict_format


def catastrophic_regex(prompts, completions, **_):
    """Nested quantifiers: exponential backtracking, all inside the C regex engine (the GIL held)."""
    return [float(re.match(r"(a+)+$", "a" * 40 + "b") is not None) if "spin" in c else 1.0 for c in completions]


def huge_integer(prompts, completions, **_):
    """One C call that takes minutes: 10**(10**8) to decimal."""
    return [float(len(str(10 ** (10**8)))) if "huge" in c else 0.5 for c in completions]


def half_or_none(prompts, completions, **_):
    return [None if c == "skip" else 0.5 for c in completions]


def raises_on_boom(prompts, completions, **_):
    if any("boom" in c for c in completions):
        raise RuntimeError("cannot score this")
    return [1.0] * len(completions)


def one_value(prompts, completions, **_):
    return [1.0]


def test_a_function_spinning_in_c_is_cut_at_its_limit_and_the_run_goes_on():
    function = RewardFunction("spin", catastrophic_regex, timeout=0.5, isolation="process")
    started = time.perf_counter()
    totals, metrics, _ = score([function], ["q"] * 3, ["ok", "spin", "ok"], {})
    assert totals == [1.0, 0.0, 1.0] and metrics["reward_failures/spin"] == 1
    assert time.perf_counter() - started < 10  # not the minutes the regex would take
    assert score([function], ["q"], ["ok"], {})[0] == [1.0]  # the next call works, in a fresh worker


def test_a_huge_integer_is_cut_and_its_worker_replaced():
    function = RewardFunction("huge", huge_integer, timeout=0.5, isolation="process")
    assert score([function], ["q"], ["huge"], {})[0] == [0.0]
    assert function.failures == 1
    assert score([function], ["q", "q"], ["a", "b"], {})[0] == [0.5, 0.5]
    assert function._worker.starts == 2  # one killed, one replacement


def test_a_warm_worker_serves_every_call():
    function = RewardFunction("half", half_or_none, isolation="process")
    for _ in range(5):
        totals, metrics, _ = score([function], ["q"] * 2, ["a", "skip"], {})
    assert totals == [0.5, 0.0] and metrics["rewards/half/mean"] == 0.5  # None drops out, as in a thread
    assert function._worker.starts == 1


def test_a_process_function_keeps_the_failure_contract(caplog):
    function = RewardFunction("fragile", raises_on_boom, weight=2.0, isolation="process")
    with caplog.at_level("WARNING", logger="r1lab.rewards"):
        totals, metrics, _ = score([function], ["q"] * 3, ["ok", "boom", "ok"], {})
    assert totals == [2.0, 0.0, 2.0] and metrics["reward_failures/fragile"] == 1
    assert sum("fragile" in r.message for r in caplog.records) == 1
    assert "RuntimeError: cannot score this" in caplog.records[0].message  # the worker's traceback
    with pytest.raises(RewardFunctionError, match="'short'"):
        score([RewardFunction("short", one_value, isolation="process")], ["q", "q"], ["a", "b"], {})


def test_a_process_function_must_be_importable():
    with pytest.raises(TypeError, match="'inline'.*importable"):
        RewardFunction("inline", lambda p, c, **_: [1.0] * len(c), isolation="process")
    with pytest.raises(ValueError, match="thread, process"):
        RewardFunction("odd", half_or_none, isolation="fiber")


def test_accuracy_runs_in_a_process_so_a_sympy_tower_is_cut():
    accuracy, formatting, code = reward_functions(["accuracy", "format", "code"], timeout=4.0)
    assert (accuracy.isolation, formatting.isolation, code.isolation) == ("process", "thread", "thread")
    assert code.timeout is None  # the sandbox kills each program at its own limit
    totals = score([accuracy], ["q"], [" <answer> 9**9**9**9 </answer>"], {"answer": ["1"]})[0]
    assert totals == [0.0] and accuracy.failures == 1
    assert score([accuracy], ["q"], [" <answer> 7 </answer>"], {"answer": ["7"]})[0] == [1.0]


def test_a_module_function_reward_runs_in_a_worker_process(tmp_path, monkeypatch):
    (tmp_path / "shouting_rewards.py").write_text("def shout(prompts, completions, **_):\n"
                                            "    return [float(c.isupper()) for c in completions]\n")
    monkeypatch.chdir(tmp_path)  # a module beside the command, not on sys.path
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    (shout,) = reward_functions(["shouting_rewards:shout"], timeout=5.0)
    assert shout.isolation == "process" and shout.timeout == 5.0
    assert score([shout], ["q", "q"], ["HEY", "hey"], {})[0] == [1.0, 0.0]
    with pytest.raises(ValueError, match="no function 'whisper'"):
        reward_functions(["shouting_rewards:whisper"])
    with pytest.raises(ValueError, match="cannot import 'not_a_module'"):
        reward_functions(["not_a_module:f"])


DEGENERATE = {
    "think repeated": "<think>" * 30_000,
    "think and close repeated": "<think></think>" * 14_000,
    "answer opened repeated": "<answer>" * 25_000,
    "one letter": "a" * 200_000,
    "blocks without answer": ("<think> a </think>" + " " * 10) * 7_000,
}


@pytest.mark.parametrize("name", DEGENERATE)
def test_format_parsers_are_linear_on_long_degenerate_completions(name):
    text = DEGENERATE[name]  # ~200k characters; the old lazy regex took seconds on half of this
    started = time.perf_counter()
    follows_soft_format(text), follows_strict_format(text), answer_in_tags(text)
    assert time.perf_counter() - started < 1.0  # a complexity check: linear scans take milliseconds


TOKENS = st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "a", "7"]), max_size=14)
OLD_STRICT = re.compile(r"^\s*<think>(?:(?!<think>|</think>|<answer>|</answer>).)*</think>\s*"
                        r"<answer>(?:(?!<think>|</think>|<answer>|</answer>).)*</answer>\s*$", re.DOTALL)
OLD_SOFT = re.compile(r"<think>.*?</think>.*?<answer>.*?</answer>", re.DOTALL)
OLD_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@settings(max_examples=400, deadline=None)
@given(TOKENS)
def test_the_scans_accept_exactly_what_the_old_regexes_did(tokens):
    text = "".join(tokens)
    assert follows_strict_format(text) == (OLD_STRICT.match(text) is not None)
    assert follows_soft_format(text) == (OLD_SOFT.search(text) is not None)
    found = OLD_ANSWER.findall(text)
    assert answer_in_tags(text) == (found[-1].strip() if found else None)


def test_the_limit_counts_the_functions_own_time_not_the_workers_start(tmp_path, monkeypatch):
    """A module that takes 1 s to import (a busy machine's worker start and imports can) under a 0.5 s limit."""
    (tmp_path / "slow_to_import_reward.py").write_text(
        "import time\ntime.sleep(1.0)\n\ndef quick(prompts, completions, **_):\n    return [1.0 for _ in completions]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from slow_to_import_reward import quick

    function = RewardFunction("quick", quick, timeout=0.5, isolation="process")
    assert score([function], ["q", "q"], ["a", "b"], {})[0] == [1.0, 1.0] and function.failures == 0
