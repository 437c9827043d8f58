"""Scale-out on a local Ray cluster: env-stepping and generation workers, weight versions, workers
killed with SIGKILL mid-step, resume, and the data-parallel learner (Ray Train, gloo on CPU).

One local Ray is started for the whole session (2 CPUs, a 200 MB object store, no dashboard) and
shut down at its end. The slow tests compare whole runs with the in-process ones."""

import os
import signal
import sys
import time

import pytest
import torch

ray = pytest.importorskip("ray")

from r1lab.llm.grpo import improve, train_grpo  # noqa: E402
from r1lab.llm.loading import load_model  # noqa: E402
from r1lab.policy_gradient import CONFIGS, NumpyPolicy, train_ppo  # noqa: E402
from r1lab.policy_gradient import job as job_module  # noqa: E402
from r1lab.policy_gradient.policies import ActorCritic  # noqa: E402
from r1lab.runs import RunInterrupted, load_config, read_metrics, stop_on_signals  # noqa: E402
from r1lab.scale import ScaleSettings, StaleWeightsError  # noqa: E402
from r1lab.tasks import get_task  # noqa: E402

# the functions of this module that travel to Ray workers (scorers, learner probes) go by value:
# the workers cannot import a test module
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

KEYS = ("step", "episode_return", "policy_loss", "value_loss", "approx_kl")


@pytest.fixture(scope="session", autouse=True)
def ray_cluster():
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False,
             logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def every_worker_is_gone_after_each_test():
    yield
    for _ in range(100):  # ray.kill is asynchronous: the CPUs come back within moments
        if ray.available_resources().get("CPU", 0) == pytest.approx(2.0):
            return
        time.sleep(0.1)
    raise AssertionError(f"a test left actors holding CPUs: {ray.available_resources()}")


def ppo_config(*sets):
    return load_config(CONFIGS["ppo"], "ppo-cartpole", sets=["tensorboard=false", "eval_episodes=3",
                                                             "total_steps=2048", *sets])


def strip(run_dir, keys=KEYS):
    return [{k: r.get(k) for k in keys} for r in read_metrics(run_dir)]


def length_scorer(prompts, completions, fields):
    return [float(len(text) % 7) for text in completions], {"length_mod_7": 1.0}


# ---------------------------------------------------------------- env-stepping workers


def test_ppo_on_one_ray_worker_is_the_in_process_run(tmp_path):
    local = train_ppo(ppo_config(), tmp_path / "local", quiet=True)
    on_ray = train_ppo(ppo_config("backend=ray"), tmp_path / "ray", quiet=True)
    assert strip(tmp_path / "ray") == strip(tmp_path / "local")
    assert on_ray["eval_return_mean"] == local["eval_return_mean"]
    assert on_ray["backend"] == "ray" and on_ray["num_workers"] == 1 and on_ray["scale_seconds"]["sync"] > 0
    last = read_metrics(tmp_path / "ray")[-1]
    assert last["time/sync"] > 0 and last["time/sampling"] > 0 and last["workers/redone"] == 0


def test_ppo_on_two_ray_workers_is_deterministic_for_its_seed_with_global_normalisers(tmp_path):
    sets = ("backend=ray", "num_workers=2", "normalize_obs=true", "normalize_reward=true")
    first = train_ppo(ppo_config(*sets), tmp_path / "a", quiet=True)
    second = train_ppo(ppo_config(*sets), tmp_path / "b", quiet=True)
    assert strip(tmp_path / "a") == strip(tmp_path / "b") and first["eval_return_mean"] == second["eval_return_mean"]
    state = torch.load(sorted((tmp_path / "a" / "checkpoints").glob("step-*"))[-1] / "state.pt", weights_only=False)
    # the global statistics hold every observation of both workers: 8 resets, then 2048 steps
    assert state["collector"]["obs_normalizer"]["count"] == pytest.approx(8 + 2048, abs=1e-3)


def test_a_worker_killed_mid_step_is_restarted_and_its_share_redone_exactly(tmp_path, monkeypatch):
    from r1lab.scale.ray_rollout import RayRolloutCollector

    undisturbed = train_ppo(ppo_config("backend=ray", "num_workers=2"), tmp_path / "undisturbed", quiet=True)
    original, pids = RayRolloutCollector.collect, []

    def killed_during_iteration_three(self, policy, rng=None):
        if self.version == 1:  # the third collect: worker 1 SIGKILLs itself halfway through its rollout
            pids.append(self.workers.pids())
            self.workers.inject_fault(1, "mid-rollout")
        rollout = original(self, policy, rng)
        if self.version == 2:
            pids.append(self.workers.pids())
        return rollout

    monkeypatch.setattr(RayRolloutCollector, "collect", killed_during_iteration_three)
    disturbed = train_ppo(ppo_config("backend=ray", "num_workers=2"), tmp_path / "disturbed", quiet=True)
    assert pids[0][0] == pids[1][0] and pids[0][1] != pids[1][1]  # worker 1 is a new process
    assert disturbed["workers_redone"] == 1
    assert strip(tmp_path / "disturbed") == strip(tmp_path / "undisturbed")
    assert disturbed["eval_return_mean"] == undisturbed["eval_return_mean"]


def collector_and_policy(config):
    from r1lab.scale.ray_rollout import RayRolloutCollector

    collector = RayRolloutCollector(config)
    torch.manual_seed(0)
    policy = ActorCritic(collector.encode.size, collector.action_space, config.hidden_sizes)
    return collector, NumpyPolicy(policy)


def test_a_worker_killed_between_steps_is_restarted_and_the_rollouts_are_unchanged():
    config = ppo_config("backend=ray", "num_workers=2")
    undisturbed, policy = collector_and_policy(config)
    expected = [undisturbed.collect(policy).obs for _ in range(3)]
    undisturbed.close()
    collector, policy = collector_and_policy(config)
    got = [collector.collect(policy).obs]
    os.kill(collector.workers.pids()[0], signal.SIGKILL)
    got += [collector.collect(policy).obs for _ in range(2)]
    collector.close()
    assert all(torch.equal(a, b) for a, b in zip(got, expected)) and collector.workers.redone >= 1


def test_a_batch_sampled_with_old_weights_is_an_error_not_a_silent_slip():
    config = ppo_config("backend=ray", "num_workers=2")
    collector, policy = collector_and_policy(config)
    try:
        collector.collect(policy)
        collector.collect(policy)
        reference, version = collector.workers.weights
        ray.get(collector.workers.actors[1].set_weights.remote(reference, version - 1))  # a lost update
        with pytest.raises(StaleWeightsError, match="worker 1 sampled with weights version 0, but the learner is at version 1"):
            collector.workers.sample([version] * 2, version)
    finally:
        collector.close()


def test_sigterm_mid_ray_run_then_resume_ends_where_the_uninterrupted_run_ends(tmp_path, monkeypatch):
    config = ppo_config("backend=ray", "num_workers=2", "steps_per_env=32")
    straight = train_ppo(config, tmp_path / "straight", quiet=True)
    original = job_module.Job.record

    def terminated_during_iteration_three(self, iteration, *args, **kwargs):
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, iteration, *args, **kwargs)

    monkeypatch.setattr(job_module.Job, "record", terminated_during_iteration_three)
    with stop_on_signals(), pytest.raises(RunInterrupted):
        train_ppo(config, tmp_path / "resumed", quiet=True)
    monkeypatch.setattr(job_module.Job, "record", original)
    resumed = train_ppo(config, tmp_path / "resumed", resume=True, quiet=True)
    assert resumed["exact_resume"] and resumed["eval_return_mean"] == straight["eval_return_mean"]
    assert strip(tmp_path / "resumed") == strip(tmp_path / "straight")


# ---------------------------------------------------------------- generation workers


def grpo_run(small_config, model_dir, run_dir, items, stop_after=None, **overrides):
    config = small_config(model_dir, steps=3, save_model=True, backend="ray", num_workers=2, **overrides)
    summary = train_grpo(config, run_dir, items, length_scorer, quiet=True, stop_after=stop_after)
    if stop_after is not None:  # and resumed from its checkpoint, as a killed run would be
        summary = train_grpo(config, run_dir, items, length_scorer, quiet=True, resume=True)
    return summary, load_model(run_dir / "model").policy.state_dict()


def test_grpo_on_two_generation_workers_survives_one_killed_mid_step_and_resumes(small_config, qwen2_dir, tmp_path,
                                                                                 monkeypatch):
    from r1lab.scale.ray_generation import RayGenerationPool

    items = get_task("arithmetic").items(20, "train")
    undisturbed, weights = grpo_run(small_config, qwen2_dir, tmp_path / "undisturbed", items)
    original = RayGenerationPool.sample

    def killed_in_step_two(self, prompts, payload, *, version=0, group_size=1):
        if version == 1:  # worker 1 dies between generating its share and scoring it
            self.workers.inject_fault(1, "between generation and scoring")
        return original(self, prompts, payload, version=version, group_size=group_size)

    monkeypatch.setattr(RayGenerationPool, "sample", killed_in_step_two)
    disturbed, disturbed_weights = grpo_run(small_config, qwen2_dir, tmp_path / "disturbed", items, stop_after=2)
    assert undisturbed["workers_redone"] == 0
    assert [r["workers/redone"] for r in read_metrics(tmp_path / "disturbed")] == [0, 1, 0]  # step 3 after the resume
    keys = ("step", "reward", "loss", "completion_length/mean", "length_mod_7")
    assert strip(tmp_path / "disturbed", keys) == strip(tmp_path / "undisturbed", keys)
    for name, tensor in weights.items():
        assert torch.equal(disturbed_weights[name], tensor), name
    last = read_metrics(tmp_path / "undisturbed")[-1]
    assert last["time/sync"] > 0 and last["time/worker_generation"] > 0 and last["length_mod_7"] == 1.0


def test_a_scorer_that_cannot_travel_to_the_workers_is_one_clear_error():
    import threading

    from r1lab.runs import ConfigError
    from r1lab.scale.ray_generation import RayGenerationPool

    lock = threading.Lock()
    with pytest.raises(ConfigError, match=r"cannot be pickled .*pass r1lab.scale.Recipe"):
        RayGenerationPool(ScaleSettings(backend="ray"), None, None, None, lambda *args: lock, None)


# ---------------------------------------------------------------- the data-parallel learner


def learner_gradients(config, model_dir, grpo_batch, sft_examples, pad_id):
    """On every rank: the GRPO step's gradient for each loss type, and SFT's, as the learner leaves
    them after its all-reduce (rank 0's come back)."""
    from r1lab.llm.grpo_config import GRPOConfig
    from r1lab.llm.sft import accumulate_gradients
    from r1lab.scale.learner import current_learner

    gradients = {}
    for loss_type, iterations in (("grpo", 1), ("grpo", 2), ("dapo", 1), ("dr_grpo", 1), ("bnpo", 1)):
        model = load_model(model_dir).policy
        settings = GRPOConfig(loss_type=loss_type, num_iterations=iterations, micro_batch_size=3, max_new_tokens=10,
                              max_grad_norm=1e9)
        improve(model, None, torch.optim.SGD(model.parameters(), lr=0.0), grpo_batch, settings)
        gradients[f"{loss_type}-{iterations}"] = torch.cat([p.grad.flatten() for p in model.parameters()])
    model = load_model(model_dir).policy
    loss, _ = accumulate_gradients(model, [sft_examples[:5], sft_examples[5:]], pad_id, "cpu")
    gradients["sft"] = torch.cat([p.grad.flatten() for p in model.parameters()])
    gradients["sft-loss"] = torch.tensor([loss])
    gradients["world"] = torch.tensor([current_learner().world_size])
    return gradients


@pytest.mark.slow
def test_the_data_parallel_gradient_equals_the_single_process_gradient(qwen2_dir, grpo_batch):
    from r1lab.llm.sft import encode_pairs
    from r1lab.scale.ray_learner import run_data_parallel

    tokenizer = load_model(qwen2_dir).tokenizer
    pairs = [{"prompt": f"{a}+{b}=", "completion": f" {a + b}" * (1 + a % 3)} for a, b in zip(range(9), range(3, 12))]
    examples = encode_pairs(tokenizer, pairs, "plain", 64)
    single = learner_gradients(ScaleSettings(), str(qwen2_dir), grpo_batch, examples, tokenizer.pad_token_id)
    distributed = run_data_parallel(learner_gradients, ScaleSettings(backend="ray", learner_workers=2), str(qwen2_dir),
                                    grpo_batch, examples, tokenizer.pad_token_id)
    assert single["world"].item() == 1 and distributed["world"].item() == 2
    for name, gradient in single.items():
        if name != "world":
            torch.testing.assert_close(distributed[name], gradient, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.slow
def test_sft_on_a_data_parallel_learner_is_the_single_process_run_and_resumes(tmp_path):
    from test_sft import worked_pairs, write_pairs

    from r1lab.llm.sft import train_sft
    from r1lab.llm.sft_config import SFTConfig

    data = write_pairs(tmp_path / "pairs.jsonl", worked_pairs(64))
    settings = dict(data=str(data), max_steps=4, batch_size=8, grad_accumulation=2, eval_every=2, warmup_steps=0,
                    save_model=False)
    one = train_sft(SFTConfig(**settings), tmp_path / "one", quiet=True)
    parallel = SFTConfig(**settings, backend="ray", learner_workers=2)
    assert train_sft(parallel, tmp_path / "two", quiet=True, stop_after=2) == {"stopped_at": 2}
    two = train_sft(parallel, tmp_path / "two", quiet=True, resume=True)  # a lost learner comes back from its checkpoint
    assert two["learner_workers"] == 2 and [r["step"] for r in read_metrics(tmp_path / "two")] == [0, 1, 2, 3, 4]
    losses = lambda run: [r.get("loss") for r in read_metrics(run) if "loss" in r]  # noqa: E731
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), rel=1e-5)
    assert two["eval_loss_last"] == pytest.approx(one["eval_loss_last"], rel=1e-5)


@pytest.mark.slow
def test_grpo_with_generation_workers_and_a_data_parallel_learner_equals_one_learner(small_config, qwen2_dir, tmp_path):
    items = get_task("arithmetic").items(20, "train")
    one, one_weights = grpo_run(small_config, qwen2_dir, tmp_path / "one", items, micro_batch_size=3)
    two, two_weights = grpo_run(small_config, qwen2_dir, tmp_path / "two", items, micro_batch_size=3, learner_workers=2)
    assert two["learner_workers"] == 2 and two["steps"] == 3
    keys = ("step", "reward", "completion_length/mean")
    assert strip(tmp_path / "two", keys) == strip(tmp_path / "one", keys)  # the same sampled batches
    for name, tensor in one_weights.items():
        torch.testing.assert_close(two_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)


# ---------------------------------------------------------------- the same learning


@pytest.mark.slow
def test_ppo_on_two_ray_workers_solves_cartpole_as_the_in_process_run_does(tmp_path):
    sets = ("total_steps=100000", "eval_episodes=20")
    local = train_ppo(ppo_config(*sets), tmp_path / "local", quiet=True)
    on_ray = train_ppo(ppo_config(*sets, "backend=ray", "num_workers=2"), tmp_path / "ray", quiet=True)
    assert local["eval_return_mean"] >= 450 and on_ray["eval_return_mean"] >= 450  # CartPole's ceiling is 500
    assert abs(on_ray["train_return_recent"] - local["train_return_recent"]) <= 75


@pytest.mark.slow
def test_r1_zero_on_two_generation_workers_reaches_the_in_process_held_out_accuracy(tmp_path):
    from r1lab.pipelines.r1_zero import R1ZeroConfig, run_grpo_job

    settings = dict(steps=30, eval_every=0, eval_k=0, save_model=False)
    local = run_grpo_job(R1ZeroConfig(**settings), tmp_path / "local", quiet=True)
    on_ray = run_grpo_job(R1ZeroConfig(**settings, backend="ray", num_workers=2), tmp_path / "ray", quiet=True)
    assert on_ray["before"] == local["before"]  # the same base model, evaluated in this process
    for summary in (local, on_ray):
        assert summary["after"]["accuracy"] >= summary["before"]["accuracy"] + 0.5
        assert summary["after"]["format_rate"] >= 0.9
    assert abs(on_ray["after"]["accuracy"] - local["after"]["accuracy"]) <= 0.1


def length_items_scorer(items, prompts, completions):
    """An RLHF scorer (items, prompts, completions) -> (scores, metrics) that travels by value."""
    scores = completions.lengths.float() / 8.0
    return scores, {"length_score": scores.mean().item()}


def test_rlhf_on_two_generation_workers_is_deterministic_and_samples_there(qwen2_dir, tmp_path):
    from r1lab.llm import rlhf
    from r1lab.llm.rlhf_config import RLHFConfig

    def run(name):
        config = RLHFConfig(model=str(qwen2_dir), critic_init="policy", prompts_per_step=4, max_new_tokens=8,
                            steps=2, ppo_epochs=1, micro_batch_size=2, lr=1e-3, save_model=False,
                            backend="ray", num_workers=2, cpus_per_worker=0.5)
        rlhf.train_rlhf(config, tmp_path / name, get_task("chat").items(20), length_items_scorer, quiet=True)
        return read_metrics(tmp_path / name)

    first, second = run("a"), run("b")
    keys = ("rm_score", "kl", "value_loss", "completion_length/mean", "length_score")
    assert [{k: r[k] for k in keys} for r in first] == [{k: r[k] for k in keys} for r in second]
    assert all(r["time/worker_generation"] > 0 and r["time/sync"] > 0 for r in first)
