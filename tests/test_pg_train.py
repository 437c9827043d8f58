"""Short seeded REINFORCE, TRPO and PPO runs: they learn, they resume exactly, they write what users read."""

import json

import pytest
import torch

from r1lab.policy_gradient import CONFIGS, TRAINERS, PPOConfig, load_run, train_ppo
from r1lab.policy_gradient import job as job_module
from r1lab.runs import load_config, read_metrics

QUIET = ["tensorboard=false", "eval_episodes=5"]


def config(algorithm, preset=None, *sets):
    return load_config(CONFIGS[algorithm], preset, sets=[*QUIET, *sets])


def returns(run_dir):
    return [r["episode_return"] for r in read_metrics(run_dir) if "episode_return" in r]


def test_short_ppo_run_improves_the_return_on_cartpole(tmp_path):
    summary = train_ppo(config("ppo", "ppo-cartpole", "total_steps=16384"), tmp_path, quiet=True)
    curve = returns(tmp_path)
    assert curve[0] < 40 and curve[-1] > 3 * curve[0], curve
    assert summary["eval_return_mean"] > 100
    for key in ("env_steps", "wall_seconds", "steps_per_second", "eval_return_mean", "eval_return_std"):
        assert summary[key] is not None and summary[key] >= 0, key
    assert summary["env_steps"] == 16384 and summary["peak_memory_mb"] > 0  # the 500 MB target: benchmarks/ppo_vs_sb3.py
    record = read_metrics(tmp_path)[-1]
    for metric in ("episode_return", "episode_length", "policy_loss", "value_loss", "entropy", "approx_kl",
                   "clip_fraction", "explained_variance", "steps_per_second"):
        assert metric in record, metric


@pytest.mark.parametrize("algorithm", ["ppo", "trpo", "reinforce"])
def test_every_algorithm_solves_the_seeds_maze(tmp_path, algorithm):
    summary = TRAINERS[algorithm](config(algorithm, f"{algorithm}-maze"), tmp_path, quiet=True)
    curve = returns(tmp_path)
    assert curve[0] < 0 < curve[-1]  # from bumping into walls to reaching E
    assert summary["eval_return_mean"] == 1.0  # the deterministic policy walks straight to E: +1, no bumps
    assert summary["eval_return_std"] == 0.0


@pytest.mark.parametrize("algorithm", ["trpo", "reinforce"])
def test_trpo_and_reinforce_improve_the_return_on_cartpole(tmp_path, algorithm):
    sets = ["total_steps=16384"] if algorithm == "trpo" else ["total_steps=32000", "steps_per_env=200"]
    TRAINERS[algorithm](config(algorithm, f"{algorithm}-cartpole", *sets), tmp_path, quiet=True)
    curve = returns(tmp_path)
    assert curve[-1] > 2 * curve[0], curve


def test_continuous_ppo_on_pendulum_runs_with_normalisation(tmp_path):
    summary = train_ppo(config("ppo", "ppo-pendulum", "total_steps=4096", "steps_per_env=256", "epochs=2",
                               "minibatch_size=256", "normalize_obs=true", "normalize_reward=true"), tmp_path, quiet=True)
    record = read_metrics(tmp_path)[-1]
    assert record["episode_length"] == 200  # every Pendulum episode is cut by its time limit
    assert all(isinstance(record[k], float) for k in ("policy_loss", "value_loss", "approx_kl", "entropy"))
    _, _, _, obs_stats = load_run(tmp_path)
    assert obs_stats["count"] > 4096 and obs_stats["mean"].shape == (3,)  # saved with the checkpoint
    assert -2000 < summary["eval_return_mean"] < 0


def test_kl_penalty_objective_adapts_beta(tmp_path):
    train_ppo(config("ppo", "ppo-cartpole", "total_steps=4096", "objective=kl_penalty", "kl_target=0.001"),
              tmp_path, quiet=True)
    betas = [r["kl_beta"] for r in read_metrics(tmp_path)]
    assert betas[0] == 1.0 and len(set(betas)) > 1  # beta doubles or halves after each update
    assert all("kl" in r for r in read_metrics(tmp_path))


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("algorithm,preset,sets", [
    ("ppo", "ppo-cartpole", ["total_steps=1536", "checkpoint_every=2"]),
    ("ppo", "ppo-pendulum", ["total_steps=1536", "steps_per_env=64", "minibatch_size=128", "epochs=2",
                             "checkpoint_every=2", "normalize_obs=true", "normalize_reward=true"]),
    ("trpo", "trpo-cartpole", ["total_steps=1536", "steps_per_env=32", "checkpoint_every=2"]),
    ("reinforce", "reinforce-cartpole", ["total_steps=1536", "steps_per_env=32", "checkpoint_every=2"]),
])
def test_interrupted_then_resumed_run_ends_with_the_same_parameters(tmp_path, monkeypatch, algorithm, preset, sets):
    cfg = config(algorithm, preset, *sets)
    TRAINERS[algorithm](cfg, tmp_path / "straight", quiet=True)

    original_record = job_module.Job.record

    def crash_after_five_iterations(self, iteration, *args, **kwargs):
        original_record(self, iteration, *args, **kwargs)
        if iteration == 4:  # checkpoints were written after iterations 2 and 4; the 5th is lost
            raise Interrupted

    monkeypatch.setattr(job_module.Job, "record", crash_after_five_iterations)
    with pytest.raises(Interrupted):
        TRAINERS[algorithm](cfg, tmp_path / "resumed", quiet=True)
    monkeypatch.setattr(job_module.Job, "record", original_record)
    summary = TRAINERS[algorithm](cfg, tmp_path / "resumed", resume=True, quiet=True)

    assert summary["resumed"] and summary["exact_resume"]
    straight = torch.load(sorted((tmp_path / "straight" / "checkpoints").glob("step-*"))[-1] / "state.pt",
                          weights_only=False)
    resumed = torch.load(sorted((tmp_path / "resumed" / "checkpoints").glob("step-*"))[-1] / "state.pt",
                         weights_only=False)
    for name, tensor in straight["policy"].items():
        assert torch.equal(tensor, resumed["policy"][name]), name
    deterministic = ("step", "episode_return", "policy_loss", "value_loss")
    strip = lambda records: [{k: r.get(k) for k in deterministic} for r in records]  # noqa: E731
    assert strip(read_metrics(tmp_path / "resumed")) == strip(read_metrics(tmp_path / "straight"))


def test_checkpoint_round_trips_the_policy(tmp_path):
    cfg = PPOConfig(env_id="r1lab/Maze-v0", num_envs=2, steps_per_env=16, total_steps=64, tensorboard=False,
                    eval_episodes=1, minibatch_size=32)
    train_ppo(cfg, tmp_path, quiet=True)
    algorithm, loaded_config, policy, obs_stats = load_run(tmp_path)
    assert algorithm == "ppo" and loaded_config == cfg and obs_stats is None
    state = torch.load(sorted((tmp_path / "checkpoints").glob("step-*"))[-1] / "state.pt", weights_only=False)
    for name, tensor in policy.state_dict().items():
        assert torch.equal(tensor, state["policy"][name])
    assert state["iteration"] == 2 and set(state["optimizers"]) == {"optimizer"}
    assert json.loads((tmp_path / "summary.json").read_text())["env_steps"] == 64


def test_async_envs_resume_from_a_seeded_reset_with_a_warning(tmp_path, monkeypatch):
    cfg = config("ppo", "ppo-maze", "vectorization=async", "total_steps=1536", "steps_per_env=64", "checkpoint_every=2",
                 "num_envs=2")
    original_record = job_module.Job.record

    def crash(self, iteration, *args, **kwargs):
        original_record(self, iteration, *args, **kwargs)
        if iteration == 2:
            raise Interrupted

    monkeypatch.setattr(job_module.Job, "record", crash)
    with pytest.raises(Interrupted):
        train_ppo(cfg, tmp_path, quiet=True)
    monkeypatch.setattr(job_module.Job, "record", original_record)
    with pytest.warns(UserWarning, match="restarts their episodes from a seeded reset"):
        summary = train_ppo(cfg, tmp_path, resume=True, quiet=True)
    assert summary["resumed"] and summary["exact_resume"] is False
    assert [r["step"] for r in read_metrics(tmp_path)] == [128 * i for i in range(1, 13)]
