"""The learning targets of the policy-gradient jobs, over 5 seeds (slow: about 6 minutes on 2 cores).

    pytest -m slow tests/test_pg_targets.py

The same runs, with their JSON report, are `python benchmarks/pg_targets.py`.
"""

import pytest

from r1lab.policy_gradient import CONFIGS, TRAINERS
from r1lab.runs import load_config

SEEDS = range(5)


def eval_returns(tmp_path, algorithm, preset, steps):
    results = []
    for seed in SEEDS:
        config = load_config(CONFIGS[algorithm], preset, sets=[f"seed={seed}", f"total_steps={steps}",
                                                               "eval_episodes=20", "tensorboard=false"])
        results.append(TRAINERS[algorithm](config, tmp_path / str(seed), quiet=True)["eval_return_mean"])
    return results


@pytest.mark.slow
def test_ppo_solves_cartpole_within_100k_steps_for_4_of_5_seeds(tmp_path):
    results = eval_returns(tmp_path, "ppo", "ppo-cartpole", 100_000)
    assert sum(r >= 475 for r in results) >= 4, results


@pytest.mark.slow
def test_trpo_solves_cartpole_within_100k_steps(tmp_path):
    results = eval_returns(tmp_path, "trpo", "trpo-cartpole", 100_000)
    assert sum(r >= 475 for r in results) >= 4, results


@pytest.mark.slow
def test_reinforce_with_baseline_learns_cartpole_within_200k_steps(tmp_path):
    results = eval_returns(tmp_path, "reinforce", "reinforce-cartpole", 200_000)
    assert sum(r >= 200 for r in results) >= 4, results


@pytest.mark.slow
def test_gaussian_ppo_swings_up_pendulum_within_200k_steps(tmp_path):
    results = eval_returns(tmp_path, "ppo", "ppo-pendulum", 200_000)
    assert sum(r >= -300 for r in results) >= 4, results
