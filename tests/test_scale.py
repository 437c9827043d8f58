"""Scale-out without a cluster: the settings every job takes, the one-line error of a missing extra,
the merges of the workers' shares, the workers themselves in this process, and that nothing of
r1lab imports Ray unless a job asks for it."""

import importlib.util
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from r1lab.cli import app
from r1lab.llm.generation import SamplingSettings, generate
from r1lab.llm.loading import load_model
from r1lab.policy_gradient import CONFIGS, NumpyPolicy, RolloutCollector, make_vector_env
from r1lab.policy_gradient.policies import ActorCritic
from r1lab.rewards import reward_functions
from r1lab.rewards.runner import score
from r1lab.runs import ConfigError, load_config
from r1lab.scale import RAY_MISSING, Recipe, Shard, StaleWeightsError
from r1lab.scale.generation_worker import GenerationSpec, GenerationWorker
from r1lab.scale.learner import DistributedLearner, SingleLearner
from r1lab.scale.rollout_worker import (
    RolloutWorker,
    TrackedStats,
    merge_rollouts,
    merge_stats,
    rollout_tensors,
)
from r1lab.scale.sampling import (
    merge_completions,
    merge_reward_scores,
    shard_bounds,
    slice_payload,
    text_scorer,
)
from r1lab.scale.worker import check_version, worker_seed

RUNNER = CliRunner()
# backend=ray is refused at config time without the extra; CI runs these again once it is installed
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")


def ppo_config(*sets):
    return load_config(CONFIGS["ppo"], "ppo-cartpole", sets=["tensorboard=false", "eval_episodes=2", *sets])


# ---------------------------------------------------------------- settings


@needs_ray
@pytest.mark.parametrize("job", ["ppo", "trpo", "reinforce"])
def test_every_policy_gradient_job_takes_the_scale_settings_as_flat_keys(job):
    config = load_config(CONFIGS[job], sets=["backend=ray", "num_workers=2", "ray_address=auto", "cpus_per_worker=0.25"])
    assert (config.backend, config.num_workers, config.ray_address, config.cpus_per_worker) == ("ray", 2, "auto", 0.25)


@needs_ray
def test_the_llm_jobs_take_the_scale_settings_as_flat_keys():
    from r1lab.llm.sft_config import SFTConfig
    from r1lab.pipelines.r1_zero import GRPOJobConfig, R1ZeroConfig

    for cls in (GRPOJobConfig, R1ZeroConfig):
        config = load_config(cls, sets=["backend=ray", "num_workers=4", "learner_workers=2"])
        assert (config.backend, config.num_workers, config.learner_workers) == ("ray", 4, 2)
    sft = load_config(SFTConfig, sets=["data=x.jsonl", "backend=ray", "learner_workers=2"])
    assert sft.learner_workers == 2 and CONFIGS["ppo"]().backend == "local"


@pytest.mark.parametrize("sets, message", [
    (["num_workers=2"], "'num_workers' > 1 needs backend=ray"),
    pytest.param(["backend=ray", "num_workers=3"], "must be a multiple of num_workers", marks=needs_ray),
    (["backend=ray", "learner_workers=2"], "'learner_workers' does not apply to this job"),
    (["backend=ray", "object_store_mb=10"], "'object_store_mb' must be >= 80"),
    (["backend=dask"], "is not one of 'local', 'ray'"),
])
def test_bad_scale_settings_stop_with_the_key(sets, message):
    with pytest.raises(ConfigError, match=message):
        ppo_config(*sets)


def test_sft_has_no_sampling_workers():
    from r1lab.llm.sft_config import SFTConfig

    with pytest.raises(ConfigError, match="'num_workers' does not apply to this job"):
        load_config(SFTConfig, sets=["data=x.jsonl", "backend=ray", "num_workers=2"])


def test_backend_ray_without_the_extra_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the ray extra were not installed
    for args in (["train", "ppo", "--set", "backend=ray"], ["grpo", "--set", "backend=ray"],
                 ["sft", "--data", "x.jsonl", "--set", "backend=ray"]):
        result = RUNNER.invoke(app, [*args, "--quiet", "--run-dir", str(tmp_path / "run")])
        assert result.exit_code == 2 and RAY_MISSING in " ".join(result.output.split()), result.output
        assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_nothing_of_r1lab_imports_ray_unless_a_job_asks_for_it(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import r1lab.cli, r1lab.llm.grpo, r1lab.llm.sft, r1lab.pipelines.r1_zero, r1lab.policy_gradient
        import r1lab.scale, r1lab.scale.learner, r1lab.scale.sampling, r1lab.scale.rollout_worker
        import r1lab.scale.generation_worker, r1lab.scale.recipe, r1lab.scale.settings
        from r1lab.policy_gradient import PPOConfig, train_ppo
        train_ppo(PPOConfig(total_steps=512, num_envs=4, steps_per_env=32, minibatch_size=64, epochs=1,
                            eval_episodes=1, tensorboard=False), {str(tmp_path)!r}, quiet=True)
        assert "ray" not in sys.modules, sorted(m for m in sys.modules if m.startswith("ray"))
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


# ---------------------------------------------------------------- what travels


def built_count(counter):
    counter.append(1)
    return len


def test_a_recipe_is_built_here_and_again_where_it_is_unpickled():
    calls = []
    recipe = Recipe(built_count, calls)
    assert recipe([1, 2, 3]) == 3 and len(calls) == 1
    copy = pickle.loads(pickle.dumps(recipe))
    assert copy("abcd") == 4 and isinstance(copy, Recipe)


def test_a_stale_batch_is_an_error_naming_the_worker_and_both_versions():
    check_version(Shard(0, 5, None), 5)
    with pytest.raises(StaleWeightsError, match="worker 1 sampled with weights version 4, but the learner is at version 5"):
        check_version(Shard(1, 4, None), 5)


def test_worker_seeds_differ_by_worker_and_step_and_never_change():
    seeds = {worker_seed(0, w, step, 0) for w in range(4) for step in range(50)}
    assert len(seeds) == 200 and worker_seed(0, 1, 2, 0) == worker_seed(0, 1, 2, 0)


def test_merged_normaliser_statistics_are_those_of_all_the_observations():
    rng = np.random.default_rng(0)
    base, parts = rng.normal(size=(40, 3)), [rng.normal(2.0, 3.0, size=(n, 3)) for n in (16, 24, 8)]
    worker0 = TrackedStats((3,))
    worker0.update(base)
    worker0.update(parts[0])  # worker 0 folds its observations into the global statistics
    merged = worker0.state_dict()
    for part in parts[1:]:  # the others send their increments
        increment = TrackedStats((3,))
        increment.update(part)
        merged = merge_stats(merged, increment.increment.state_dict())
    everything = np.concatenate([base, *parts])
    # equal but for the running statistics' prior (mean 0, var 1) with its count of 1e-4
    np.testing.assert_allclose(merged["mean"], everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(merged["var"], everything.var(0), rtol=1e-5)
    assert merged["count"] == pytest.approx(len(everything) + 1e-4)


def test_merged_reward_scores_are_those_of_the_whole_batch():
    functions = reward_functions(["format", "accuracy"], None, 10.0)
    completions = ["<think>a</think> <answer>3</answer>", "no", "<think>b</think><answer>4</answer>", "<answer>3</answer>",
                   "x", "<think>c</think> <answer>5</answer>"]
    fields = {"answer": ["3", "3", "4", "4", "5", "5"]}
    prompts = ["p"] * 6
    whole = score(functions, prompts, completions, fields)
    parts = [score(functions, prompts[a:b], completions[a:b], slice_payload(fields, a, b)) for a, b in ((0, 2), (2, 6))]
    merged = merge_reward_scores(parts)
    assert merged[0] == whole[0] and merged[2] == whole[2]
    for key, value in whole[1].items():
        assert merged[1][key] == pytest.approx(value, abs=1e-12), key
    for function in functions:
        function.close()


def test_shards_are_whole_groups_in_order():
    assert shard_bounds(16, 4, 2) == [(0, 8), (8, 16)]
    assert shard_bounds(12, 4, 2) == [(0, 4), (4, 12)]
    assert shard_bounds(8, 4, 4) == [(0, 0), (0, 4), (4, 4), (4, 8)]  # fewer groups than workers: some sit out


# ---------------------------------------------------------------- the learner's shares


def test_the_single_learner_returns_everything_unchanged():
    learner, rows = SingleLearner(), torch.arange(7)
    assert learner.shard(rows) is rows and learner.shard_micro_batches([rows]) == [rows]
    assert learner.all_reduce_sums({"loss": 1.5}) == {"loss": 1.5} and learner.broadcast(3) == 3


@pytest.mark.parametrize("world", [2, 3, 5])
def test_the_ranks_shares_cover_every_row_once_in_order(world):
    batches = [torch.arange(0, 7), torch.arange(7, 9)]
    ranks = [DistributedLearner(rank, world) for rank in range(world)]
    shares = [learner.shard_micro_batches(batches) for learner in ranks]
    assert sorted(torch.cat([s for share in shares for s in share]).tolist()) == list(range(9))
    whole = [learner.shard_micro_batches(batches, whole=True) for learner in ranks]
    assert [len(w) for w in whole] == [1, 1] + [0] * (world - 2)  # BNPO: micro-batches go whole to a rank


# ---------------------------------------------------------------- the workers, in this process


def test_worker_zero_of_one_steps_exactly_as_the_in_process_collector():
    config = ppo_config("total_steps=512")
    envs = make_vector_env(config.env_id, config.num_envs)
    collector = RolloutCollector(envs, config.steps_per_env, config.gamma)
    collector.reset(seed=config.seed)
    torch.manual_seed(0)
    policy = ActorCritic(collector.encode.size, envs.single_action_space, config.hidden_sizes)
    worker = RolloutWorker(config, 0)
    worker.set_weights({"policy": NumpyPolicy(policy), "obs_stats": None, "reward_stats": None}, 0)
    rng = np.random.default_rng(config.seed)
    for _ in range(3):
        expected, shard = collector.collect(NumpyPolicy(policy), rng), worker.sample()
        for name in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs"):
            assert torch.equal(getattr(shard.data[0], name), getattr(expected, name)), name
        assert shard.data[0].episode_returns == expected.episode_returns and shard.version == 0
    # what travels from a Ray worker: arrays, back to equal (and writable) tensors on the driver
    travelled = rollout_tensors(worker.sample_arrays().data[0])
    expected = collector.collect(NumpyPolicy(policy), rng)
    for name in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs"):
        value = getattr(travelled, name)
        assert torch.equal(value, getattr(expected, name)) and value.dtype == getattr(expected, name).dtype, name
    travelled.rewards.mul_(2.0)  # a copy, not a read-only view of the object store


@needs_ray
def test_a_restored_rollout_worker_redoes_its_share_exactly():
    config = ppo_config("backend=ray", "num_workers=2", "total_steps=512")
    torch.manual_seed(0)
    worker = RolloutWorker(config, 1)
    policy = ActorCritic(worker.collector.encode.size, worker.collector.envs.single_action_space, config.hidden_sizes)
    worker.set_weights({"policy": NumpyPolicy(policy), "obs_stats": None, "reward_stats": None}, 0)
    before = worker.sample().state
    first = worker.sample().data[0]
    fresh = RolloutWorker(config, 1)  # as Ray restarts a dead actor: the constructor again
    fresh.restore(before)
    fresh.set_weights({"policy": NumpyPolicy(policy), "obs_stats": None, "reward_stats": None}, 0)
    again = fresh.sample().data[0]
    assert torch.equal(again.obs, first.obs) and torch.equal(again.actions, first.actions)
    merged = merge_rollouts([first, again])
    assert merged.obs.shape == (config.steps_per_env, 8, 4)


def test_a_generation_worker_samples_as_generate_does_with_its_seed(qwen2_dir):
    functions = reward_functions(["format"], None, 10.0)
    scorer = text_scorer(lambda prompts, texts, fields: score(functions, prompts, texts, fields))
    settings = SamplingSettings(max_new_tokens=12)
    worker = GenerationWorker(GenerationSpec(str(qwen2_dir), None, None, settings, scorer), 0)
    loaded = load_model(qwen2_dir)
    with torch.no_grad():
        for p in loaded.policy.parameters():
            p.add_(0.01)  # the learner has moved on: the worker must sample with these weights
    worker.set_weights(loaded.policy.state_dict(), 3)
    prompts, fields = ["1+1=", "1+1=", "2+3=", "2+3="], {"answer": ["2", "2", "5", "5"]}
    shard = worker.sample((prompts, fields, 1234))
    expected = generate(loaded.policy, loaded.tokenizer, prompts, settings, torch.Generator().manual_seed(1234))
    completions, (rewards, _, _) = shard.data
    assert completions.texts == expected.texts and torch.equal(completions.completion_ids, expected.completion_ids)
    assert shard.version == 3 and len(rewards) == 4
    assert worker.sample((prompts, fields, 1234)).data[0].texts == expected.texts  # a redone share is the same
    halves = merge_completions([worker.sample((prompts[:2], fields, 7)).data[0],
                                worker.sample((prompts[2:], fields, 8)).data[0]], loaded.tokenizer.pad_token_id)
    assert halves.completion_ids.shape[0] == 4 and halves.prompt_mask.shape == expected.prompt_mask.shape
