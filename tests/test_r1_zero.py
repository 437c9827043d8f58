"""R1-Zero on the bundled tiny model: a short run learns; the default job meets its targets (slow)."""

import json

import pytest

from r1lab.pipelines.r1_zero import R1ZeroConfig, run_grpo_job


def test_a_short_seeded_grpo_run_on_an_easy_task_raises_reward(tmp_path):
    config = R1ZeroConfig(task="arithmetic-easy", steps=8, group_size=8, prompts_per_step=8, max_new_tokens=64,
                          lr=3e-4, eval_items=20, eval_k=0, checkpoint_every=100, save_model=False, seed=0)
    summary = run_grpo_job(config, tmp_path, quiet=True)
    rewards = [json.loads(line)["reward"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
               if "reward" in json.loads(line)]
    assert len(rewards) == 8
    assert sum(rewards[-3:]) / 3 > sum(rewards[:3]) / 3 + 0.2
    assert summary["after"]["format_rate"] > summary["before"]["format_rate"]
    assert (tmp_path / "plots" / "reward.png").exists()


@pytest.mark.slow
def test_the_default_r1_zero_job_meets_its_targets(tmp_path):
    """The README's main job: +30 points of greedy accuracy, >= 95% format, +10 points answer-anywhere."""
    summary = run_grpo_job(R1ZeroConfig(), tmp_path, quiet=True)
    before, after = summary["before"], summary["after"]
    assert after["accuracy"] >= before["accuracy"] + 0.30
    assert after["format_rate"] >= 0.95
    assert after["answer_anywhere_accuracy"] >= before["answer_anywhere_accuracy"] + 0.10
    for name in ("reward", "accuracy", "format_rate", "completion_length_mean"):
        assert (tmp_path / "plots" / f"{name}.png").exists()
