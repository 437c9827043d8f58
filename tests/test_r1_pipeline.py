"""DeepSeek-R1's stages on micro budgets: each makes its artifacts and summary, the readability filters
drop what they should, a killed stage resumes, a missing input names the stage that makes it."""

import importlib.util
import json
import os
import signal
from dataclasses import replace

import pytest

from r1lab.pipelines.r1 import R1Config, parse_stages, run_r1, stages
from r1lab.pipelines.r1 import data as r1_data
from r1lab.pipelines.r1.config import ColdStart, Distill, Rejection, RewardModels, RLStage, Tasks
from r1lab.pipelines.r1.rewards import verified_reward
from r1lab.rewards import follows_r1_format
from r1lab.runs import ConfigError, RunInterrupted, stop_on_signals
from r1lab.tasks import ArithmeticTask

MICRO_RL = RLStage(steps=1, prompts_per_step=2, group_size=2, max_new_tokens=64)


def micro_config(**overrides) -> R1Config:
    settings = dict(tasks=Tasks(max_digits=2, countdown=0.0, code=0.2), r1_zero=MICRO_RL, reasoning_rl=MICRO_RL,
                    all_scenarios=MICRO_RL, reward_models=RewardModels(steps=3, train_pairs=48),
                    cold_start=ColdStart(examples=400, steps=40, batch_size=16, lr=1e-3),
                    rejection=Rejection(prompts=16, samples_per_prompt=2, general_prompts=4, general_samples_per_prompt=2,
                                        curated_general=6, steps=2, batch_size=8),
                    distill=Distill(student="tiny", prompts=16, samples_per_prompt=2, sft_steps=2,
                                    rl=replace(MICRO_RL, steps=1)),
                    eval_items=4, eval_max_new_tokens=48)
    settings.update(overrides)
    return R1Config(**settings)


@pytest.fixture(scope="module")
def road(tmp_path_factory):
    """Reward models and a cold-started model (40 SFT steps: enough to answer 2-digit sums in R1's format)."""
    run_dir = tmp_path_factory.mktemp("r1")
    config = micro_config()
    run_r1(config, run_dir, stages=["reward-models", "cold-start"], quiet=True, table=False)
    return config, run_dir


@pytest.mark.slow
def test_cold_start_renders_readable_r1_chains_of_thought_and_counts_what_it_filtered(road):
    config, run_dir = road
    directory = run_dir / "stages" / "cold-start"
    rows = [json.loads(line) for line in (directory / "cold_start.jsonl").read_text().splitlines()]
    summary = json.loads((directory / "summary.json").read_text())
    assert (directory / "model" / "config.json").is_file() and summary["eval_loss_last"] < summary["eval_loss_first"]
    assert summary["data"]["removed"].get("mixed_language", 0) > 0  # mixed candidates were drawn, and dropped
    assert all(follows_r1_format(row["completion"]) for row in rows)
    assert any(row["task"] == "general" for row in rows) and any(row["task"] == "code" for row in rows)
    chinese = [row for row in rows if "等于" in row["prompt"] or "是多少" in row["prompt"]]
    assert chinese and all("答案是" in row["completion"] for row in chinese)


@pytest.mark.slow
def test_reasoning_rl_rejection_sampling_all_scenarios_and_distill_make_their_artifacts(road):
    config, run_dir = road
    run_r1(config, run_dir, stages=["reasoning-rl", "rejection-sampling", "all-scenarios"], resume=True,
           quiet=True, table=False)
    # two SFT steps do not make stage 3's model answer anything; the cold-started model stands in as
    # the final model that the student learns from
    stages.distill(config, run_dir / "stages" / "distill", run_dir / "stages" / "cold-start",
                   run_dir / "stages" / "reward-models", resume=False, quiet=True)
    for name in ("reasoning-rl", "rejection-sampling", "all-scenarios"):
        assert (run_dir / "stages" / name / "summary.json").is_file()
        assert (run_dir / "stages" / name / "model" / "config.json").is_file()
    sampled = json.loads((run_dir / "stages" / "rejection-sampling" / "data.json").read_text())
    reasoning = sampled["reasoning"]
    assert reasoning["kept"] > 0 and reasoning["decided_by"]["rule"] == reasoning["samples"]
    assert reasoning["kept_by_judge_against_rule"] == 0
    assert sampled["curated_general"] == 6 and sampled["pairs"] == reasoning["kept"] + sampled["general"]["kept"] + 6
    distill = json.loads((run_dir / "stages" / "distill" / "summary.json").read_text())
    assert distill["training_sequences"] == 2 * 8 and distill["rl_steps"] == 4
    assert (run_dir / "stages" / "distill" / "sft" / "model" / "config.json").is_file()


def test_a_missing_input_names_the_stage_that_makes_it(tmp_path):
    with pytest.raises(ConfigError, match="stage 2 'reasoning-rl'.*--stages reasoning-rl"):
        run_r1(micro_config(), tmp_path, stages=["rejection-sampling"], quiet=True)
    assert not (tmp_path / "stages").exists()  # checked before any work


def test_a_stage_killed_mid_run_resumes_inside_it(tmp_path):
    config = micro_config(cold_start=ColdStart(examples=200, steps=6, batch_size=8))
    from r1lab.llm import sft

    original = sft.completion_loss_sum
    calls = []

    def terminated_at_step_three(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(*args, **kwargs)

    sft.completion_loss_sum = terminated_at_step_three
    try:
        with stop_on_signals(), pytest.raises(RunInterrupted):
            run_r1(config, tmp_path, stages=["cold-start"], quiet=True, table=False)
    finally:
        sft.completion_loss_sum = original
    stage = tmp_path / "stages" / "cold-start"
    assert list((stage / "checkpoints").glob("step-*")) and not (stage / "summary.json").exists()
    run_r1(config, tmp_path, stages=["cold-start"], resume=True, quiet=True, table=False)
    steps = [json.loads(line)["step"] for line in (stage / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4, 5, 6]  # the eval before step 1, then every step once


def test_stage_ranges_read_as_numbers_or_names():
    assert parse_stages("2-4") == ["reasoning-rl", "rejection-sampling", "all-scenarios"]
    assert parse_stages("cold-start,5") == ["cold-start", "distill"]
    assert parse_stages(None)[0] == "r1-zero"
    with pytest.raises(ConfigError, match="unknown stage 'six'"):
        parse_stages("six")


def test_readability_filters_drop_bad_samples_and_keep_good_ones():
    task = ArithmeticTask()
    english, chinese = task.item(347, "+", 85, language="en"), task.item(347, "+", 85, language="zh")
    good_en = r1_data.r1_answer(english, task.render_solution(english, "en"), "en")
    good_zh = r1_data.r1_answer(chinese, task.render_solution(chinese, "zh"), "zh")
    assert r1_data.unreadable(good_en, english) is None and r1_data.unreadable(good_zh, chinese) is None
    english_cot_for_chinese = r1_data.r1_answer(chinese, task.render_solution(chinese, "en"), "zh")
    assert r1_data.unreadable(english_cot_for_chinese, chinese) == "mixed_language"
    assert r1_data.unreadable(" <think> 347+85=432 </think>", english) == "missing_summary"
    assert r1_data.unreadable(" <think> " + "7+5=12, 2. " * 80 + "</think> The answer is 432.", english) == "overlong_paragraph"
    assert r1_data.unreadable(" <think> ```python\nprint(432)\n``` </think> The answer is 432.", english) == "code_block"


def test_requests_are_answered_in_r1_format_with_an_empty_thought_unless_harmful():
    benign, harmful = (r1_data.general_items(40, "train", 0, harmful_share=share)[0] for share in (0.0, 1.0))
    assert r1_data.general_response(benign) == f" <think> </think> {benign.answer}"
    assert r1_data.general_response(harmful).startswith(f" <think> {r1_data.HARMFUL_THINKING} </think> ")
    assert all(follows_r1_format(r1_data.general_response(item)) and
               r1_data.unreadable(r1_data.general_response(item), item) is None
               for item in r1_data.general_items(40, "train", 0, harmful_share=0.5))


def test_the_verified_reward_reads_r1_summaries_and_r1_zero_tags():
    completions = [" <think> 3+4=7 </think> The answer is 7.", " <think> x </think> 答案是8。", " <answer> 7 </answer>"]
    fields = {"task": ["arithmetic"] * 3, "answer": ["7", "7", "7"]}
    assert verified_reward(None, completions, **fields) == [1.0, 0.0, 0.0]
    assert verified_reward(None, completions, extract="answer_tag", **fields) == [0.0, 0.0, 1.0]
    assert verified_reward(None, ["hello"], task=["general"], answer=["hi"]) == [None]


def test_a_stage_scorer_travels_to_a_generation_worker_as_the_call_that_built_it():
    import pickle

    from r1lab.pipelines.r1.rewards import StageScorer, reasoning_rewards
    from r1lab.scale import Recipe

    score = pickle.loads(pickle.dumps(Recipe(StageScorer, reasoning_rewards, 1.0)))  # as Ray sends it
    assert [f.name for f in score.functions] == ["verified", "r1_format", "language_consistency"]
    fields = {"task": ["arithmetic"], "answer": ["4"], "language": ["en"], "numbers": [None], "target": [None],
              "tests": [None]}
    totals, _, _ = score(["q"], [" <think> two plus two is four </think> The answer is 4."], fields)
    assert totals == [3.0]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")
def test_r1_takes_the_scale_settings_and_hands_them_to_its_trainers():
    from r1lab.runs import load_config
    from r1lab.scale.settings import scale_of

    config = load_config(R1Config, sets=["backend=ray", "num_workers=2", "learner_workers=2"])
    assert scale_of(config)["num_workers"] == 2 and scale_of(config)["learner_workers"] == 2
