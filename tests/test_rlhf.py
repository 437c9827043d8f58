"""RLHF-PPO: both critic forms train, a killed run resumes exactly, the first PPO epoch starts at ratio 1, the
critic starts as the normalised reward model, LoRA's reference is the adapter-disabled base, and the job's summary."""

import json
from dataclasses import replace

import pytest
import torch

from r1lab.llm import rlhf, rlhf_models
from r1lab.llm.generation import SamplingSettings
from r1lab.llm.grpo import PromptStream, trimmed
from r1lab.llm.loading import load_model
from r1lab.llm.logprobs import token_logprobs
from r1lab.llm.reward_model import load_reward_model, sequence_scores
from r1lab.llm.reward_model_training import train_reward_model
from r1lab.llm.rlhf_config import RewardModelConfig, RLHFConfig
from r1lab.rewards import reward_functions, scorer
from r1lab.runs import ConfigError, load_config
from r1lab.scale.sampling import LocalSampler, item_scorer
from r1lab.tasks import get_task

METRICS = ["rm_score", "kl", "kl_penalised_return", "value_loss", "explained_variance", "clip_fraction",
           "value_clip_fraction", "ratio_mean", "entropy", "completion_length/mean", "eos_share", "time/generation",
           "time/scoring", "time/reference", "time/learning", "time/step", "memory/actor_mb", "memory/critic_mb",
           "memory/reference_mb"]


@pytest.fixture(scope="module")
def reward_dir(qwen2_dir, tmp_path_factory):
    """A reward model on the Qwen2 fixture's trunk (a few steps: these tests need one, not a good one)."""
    run_dir = tmp_path_factory.mktemp("rm")
    train_reward_model(RewardModelConfig(model=str(qwen2_dir), data="helpful", steps=3, train_pairs=40, eval_pairs=8,
                                         batch_size=8, checkpoint_every=1000), run_dir, quiet=True)
    return run_dir / "model"


def small(model_dir, reward_dir, **overrides) -> RLHFConfig:
    settings = dict(model=str(model_dir), reward_model=str(reward_dir), prompts_per_step=4, max_new_tokens=8, steps=3,
                    ppo_epochs=2, num_minibatches=2, micro_batch_size=2, lr=1e-3, checkpoint_every=1,
                    log_samples_every=1, save_model=False)
    settings.update(overrides)
    return RLHFConfig(**settings)


def run(config, run_dir, **kwargs):
    reward_model = load_reward_model(config.reward_model)
    items = get_task("chat").items(40)
    return rlhf.train_rlhf(config, run_dir, items, rlhf_models.reward_model_scorer(reward_model, reward_model.tokenizer),
                           quiet=True, **kwargs)


def checkpoint(run_dir, step):
    return torch.load(run_dir / "checkpoints" / f"step-{step:09d}" / "state.pt", weights_only=False)


@pytest.mark.parametrize("shared", [False, True], ids=["separate critic", "shared critic"])
def test_the_actor_and_either_critic_train(qwen2_dir, reward_dir, tmp_path, shared):
    # the shared run also takes the entropy bonus, whose entropy then needs a gradient
    summary = run(small(qwen2_dir, reward_dir, shared_critic=shared, ent_coef=0.01 if shared else 0.0), tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in METRICS:
        assert all(isinstance(r[key], float) for r in records), key
    before, after = checkpoint(tmp_path, 2), checkpoint(tmp_path, 3)
    for model in ("policy", "critic"):
        assert any(not torch.equal(before[model][k], after[model][k]) for k in after[model]), f"the {model} did not move"
    critic_mb = records[-1]["memory/critic_mb"]
    assert (critic_mb < 0.01) if shared else critic_mb == pytest.approx(records[-1]["memory/actor_mb"], rel=0.5)
    assert summary["rm_score_first"] is not None and summary["seconds_per_step_median"] > 0
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert {"question", "completion", "rm_score", "kl", "return", "ended"} <= set(rows[0])


def test_resume_continues_a_killed_run_exactly(qwen2_dir, reward_dir, tmp_path):
    config = small(qwen2_dir, reward_dir, steps=4, checkpoint_every=2, temperature=1.5, kl_target=1.0)
    run(config, tmp_path / "whole")
    assert run(config, tmp_path / "killed", stop_after=3) == {"stopped_at": 3}
    run(config, tmp_path / "killed", resume=True)
    whole, resumed = checkpoint(tmp_path / "whole", 4), checkpoint(tmp_path / "killed", 4)
    for model in ("policy", "critic"):
        for name, tensor in whole[model].items():
            torch.testing.assert_close(resumed[model][name], tensor, atol=1e-6, rtol=0)
    assert resumed["beta"] == pytest.approx(whole["beta"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def rollout_of(config, models=None):
    models = models or rlhf_models.build_models(config)
    reward_model = load_reward_model(config.reward_model)
    stream = PromptStream(get_task("chat").items(20), 0)
    scorer = item_scorer(rlhf_models.reward_model_scorer(reward_model, models.tokenizer))
    pool = LocalSampler(models.policy, models.tokenizer, SamplingSettings(config.max_new_tokens),
                        torch.Generator().manual_seed(0), scorer)
    items, prompts, completions, scored, _ = rlhf.collect(models, stream, pool, config, version=0)
    rollout, metrics = rlhf.score_and_estimate(models, scored, items, prompts, completions, config.beta, config)
    return models, reward_model, rollout, metrics


def test_the_first_epoch_starts_at_ratio_one_and_clips_nothing(qwen2_dir, reward_dir):
    config = small(qwen2_dir, reward_dir, ppo_epochs=1, num_minibatches=1)
    models, _, rollout, _ = rollout_of(config)
    optimizer = torch.optim.AdamW(models.policy_parameters() + models.critic_parameters(), lr=1e-3)
    stats = rlhf.improve(models, optimizer, rollout, config)
    assert stats["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert stats["clip_fraction"] == 0 and stats["approx_kl"] == pytest.approx(0.0, abs=1e-7)


def test_scores_enter_at_the_last_token_and_unfinished_answers_pay_the_eos_penalty(qwen2_dir, reward_dir):
    config = small(qwen2_dir, reward_dir, max_new_tokens=3, missing_eos_penalty=2.0, beta=0.0)
    _, _, rollout, metrics = rollout_of(config)
    truncated = rollout.completions.truncated.float()
    assert truncated.sum() > 0
    torch.testing.assert_close(rollout.scores, rollout.rm_scores - 2.0 * truncated)
    # beta = 0: the only reward is the score, on each row's last real token
    torch.testing.assert_close(rollout.rewards.sum(1), rollout.scores)
    assert metrics["eos_share"] == pytest.approx(1 - truncated.mean().item())


def test_the_critic_starts_as_the_normalised_reward_model(qwen2_dir, reward_dir):
    config = small(qwen2_dir, reward_dir)
    models, reward_model, rollout, _ = rollout_of(config)
    c = rollout.completions
    ids, mask = torch.cat([c.prompt_ids, c.completion_ids], 1), torch.cat([c.prompt_mask, c.completion_mask.long()], 1)
    expected = reward_model.normalize(reward_model.score_tokens(c.prompt_ids, c.prompt_mask, c.completion_ids, c.completion_mask))
    with torch.no_grad():
        torch.testing.assert_close(sequence_scores(models.critic, ids, mask), expected, atol=1e-4, rtol=1e-4)


def test_a_shared_critic_reads_the_policys_own_hidden_states(qwen2_dir, reward_dir):
    models, _, rollout, _ = rollout_of(small(qwen2_dir, reward_dir, shared_critic=True))
    assert models.critic is None
    prompt_ids, prompt_mask, completion_ids, completion_mask, width = trimmed(rollout.completions, torch.arange(4))
    with torch.no_grad():
        _, _, values = models.actor_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, 1.0)
        mask = torch.cat([prompt_mask, completion_mask.long()], 1)
        hidden = models.policy.model(input_ids=torch.cat([prompt_ids, completion_ids], 1), attention_mask=mask,
                                     position_ids=(mask.cumsum(1) - 1).clamp(min=0)).last_hidden_state
        start = prompt_ids.shape[1] - 1
        expected = models.value_head(hidden[:, start : start + width]) * completion_mask
    torch.testing.assert_close(values, expected, atol=1e-5, rtol=1e-5)


def test_with_lora_the_reference_is_the_adapter_disabled_base(qwen2_dir, reward_dir):
    config = small(qwen2_dir, reward_dir, lora=replace(RLHFConfig().lora, rank=4))
    models = rlhf_models.build_models(config)
    assert models.reference is None and models.memory_mb()["memory/reference_mb"] == 0
    with torch.no_grad():
        for name, parameter in models.policy.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.5)  # the adapters now change the policy
    _, _, rollout, _ = rollout_of(config, models)
    base = load_model(qwen2_dir).policy
    tensors = trimmed(rollout.completions, torch.arange(4))[:4]
    with torch.no_grad():
        expected = token_logprobs(base, *tensors)[0]
        policy = token_logprobs(models.policy, *tensors)[0]
    torch.testing.assert_close(models.reference_logprobs(*tensors, temperature=1.0), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(policy, expected, atol=1e-3)


def test_ziegler_control_moves_beta_between_steps(qwen2_dir, reward_dir, tmp_path):
    run(small(qwen2_dir, reward_dir, steps=2, beta=0.1, kl_target=0.5, kl_horizon=10), tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # step 1 samples from the reference itself: KL 0, the error clips at -0.2, beta *= 1 - 0.2 * 4 / 10
    assert records[0]["kl"] == pytest.approx(0.0, abs=1e-5)
    assert records[1]["beta"] == pytest.approx(0.1 * (1 - 0.2 * 4 / 10))


def test_ppo_with_a_rule_reward_needs_a_critic_from_the_policy(qwen2_dir, tmp_path):
    items = get_task("arithmetic").items(20)
    rules = rlhf_models.rule_scorer(scorer(reward_functions(["format"])))
    with pytest.raises(ConfigError, match="critic_init.*set critic_init=policy"):
        rlhf.train_rlhf(small(qwen2_dir, "", template="r1-zero"), tmp_path / "a", items, rules, quiet=True)
    summary = rlhf.train_rlhf(small(qwen2_dir, "", template="r1-zero", critic_init="policy", steps=2), tmp_path / "b",
                              items, rules, quiet=True)
    assert summary["steps"] == 2


def test_settings_that_cannot_work_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="critic_model.*shared_critic"):
        load_config(RLHFConfig, sets=["shared_critic=true", "critic_model=somewhere"])
    with pytest.raises(ConfigError, match="unknown key 'bta'"):
        load_config(RLHFConfig, sets=["bta=0.1"])
    with pytest.raises(ConfigError, match="'kl_estimator' = 'k4' is not one of"):
        load_config(RLHFConfig, sets=["kl_estimator=k4"])


def test_the_job_trains_its_reward_models_resumes_and_reports_before_and_after(tmp_path):
    import yaml

    from r1lab.pipelines.rlhf import RewardModelTraining, RLHFJobConfig, run_rlhf_job

    config = RLHFJobConfig(steps=2, prompts_per_step=4, max_new_tokens=8, eval_items=3, eval_k=1, checkpoint_every=100,
                           reward_model_training=RewardModelTraining(helpful_steps=2, harmless_steps=2, train_pairs=40,
                                                                     eval_pairs=10))
    assert run_rlhf_job(config, tmp_path, quiet=True, stop_after=1) == {"stopped_at": 1}
    trained = (tmp_path / "reward-models" / "helpful" / "summary.json").stat().st_mtime_ns
    recorded = yaml.safe_load((tmp_path / "config.yaml").read_text())["config"]
    assert recorded["reward_model"] == ""  # the job's own settings: --resume finds its reward models again
    summary = run_rlhf_job(config, tmp_path, quiet=True, resume=True)
    assert (tmp_path / "reward-models" / "helpful" / "summary.json").stat().st_mtime_ns == trained
    for side in ("before", "after"):
        assert {"helpful_rate", "harmless_rate", "sampled_helpful_rate", "sampled_harmless_rate", "rm_score",
                "kl"} <= set(summary[side])
    assert summary["before"]["kl"] == pytest.approx(0.0, abs=1e-5) and isinstance(summary["kl"], float)
    assert {"helpful", "harmless"} == set(summary["reward_models"])
    assert {"seconds_per_step_median", "rm_score_first", "rm_score_last"} <= set(summary)
    assert json.loads((tmp_path / "summary.json").read_text())["after"] == summary["after"]
    assert (tmp_path / "plots" / "rm_score.png").exists()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "rm_score" in r] == [1, 2]
    assert all(r["memory/reward_model_mb"] > 0 for r in records if "rm_score" in r)


def test_without_a_kl_term_no_reference_model_is_built(qwen2_dir, reward_dir, tmp_path):
    config = small(qwen2_dir, reward_dir, beta=0.0, measure_kl=False, steps=1)
    models = rlhf_models.build_models(config)
    assert models.reference is None and not models.with_reference
    run(config, tmp_path)
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert record["kl"] == 0 and record["memory/reference_mb"] == 0


def test_rows_that_repeat_a_prompt_share_its_forward_with_the_same_values_and_gradient(qwen2_dir, reward_dir):
    from r1lab.llm.value_model import critic_values

    config = small(qwen2_dir, reward_dir, samples_per_prompt=3)
    models, reward_model, rollout, _ = rollout_of(config)
    c = rollout.completions
    assert torch.unique(c.prompt_ids, dim=0).shape[0] < c.prompt_ids.shape[0]
    shared = critic_values(models.critic, c.prompt_ids, c.prompt_mask, c.completion_ids, c.completion_mask)
    (shared * torch.arange(1.0, shared.shape[1] + 1)).sum().backward()
    shared_grad = [p.grad.clone() for p in models.critic_parameters()]
    models.critic.zero_grad()
    alone = torch.cat([critic_values(models.critic, c.prompt_ids[i : i + 1], c.prompt_mask[i : i + 1],
                                     c.completion_ids[i : i + 1], c.completion_mask[i : i + 1])
                       for i in range(c.prompt_ids.shape[0])])
    (alone * torch.arange(1.0, alone.shape[1] + 1)).sum().backward()
    torch.testing.assert_close(shared, alone, atol=1e-5, rtol=1e-5)
    for a, b in zip(shared_grad, [p.grad for p in models.critic_parameters()]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    ids = torch.cat([c.prompt_ids, c.completion_ids], 1)
    mask = torch.cat([c.prompt_mask, c.completion_mask.long()], 1)
    torch.testing.assert_close(reward_model.score_tokens(c.prompt_ids, c.prompt_mask, c.completion_ids, c.completion_mask),
                               sequence_scores(reward_model.model, ids, mask), atol=1e-5, rtol=1e-5)


def test_critic_warm_up_steps_move_the_critic_only(qwen2_dir, reward_dir, tmp_path):
    run(small(qwen2_dir, reward_dir, steps=2, critic_warmup_steps=1), tmp_path)
    start = load_model(qwen2_dir).policy.state_dict()
    after_warm_up, after_step_2 = checkpoint(tmp_path, 1), checkpoint(tmp_path, 2)
    assert all(torch.equal(after_warm_up["policy"][k], start[k]) for k in start)
    critic_start = load_reward_model(reward_dir).model.state_dict()
    trunk = [k for k in critic_start if k.startswith("model.")]
    assert trunk and any(not torch.equal(after_warm_up["critic"][k], critic_start[k].float()) for k in trunk)
    assert any(not torch.equal(after_step_2["policy"][k], start[k]) for k in start)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert "clip_fraction" not in records[0] and "clip_fraction" in records[1]


def test_bf16_compute_keeps_fp32_weights_for_the_trained_models(qwen2_dir, reward_dir, tmp_path):
    # lr ~0: the ratios then show only how far pi_old (the no-grad forward) is from the training forward
    config = small(qwen2_dir, reward_dir, dtype="bfloat16", steps=1, lr=1e-8)
    models = rlhf_models.build_models(config)
    assert next(models.policy.parameters()).dtype == torch.float32
    assert next(models.critic.parameters()).dtype == torch.float32
    assert next(models.reference.parameters()).dtype == torch.bfloat16
    assert next(load_reward_model(reward_dir, dtype="bfloat16").model.parameters()).dtype == torch.bfloat16
    reward_model = load_reward_model(reward_dir, dtype="bfloat16")
    summary = rlhf.train_rlhf(config, tmp_path, get_task("chat").items(20),
                              rlhf_models.reward_model_scorer(reward_model, reward_model.tokenizer), quiet=True)
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert summary["steps"] == 1 and all(isinstance(record[k], float) for k in ("value_loss", "kl", "rm_score"))
    assert record["ratio_mean"] == pytest.approx(1.0, abs=0.01)


def test_a_reward_model_of_another_tokenizer_reads_the_decoded_texts(reward_dir):
    from r1lab.llm.loading import load_model as load

    tiny = load("tiny")
    reward_model = load_reward_model(reward_dir)
    assert not reward_model.same_tokenizer(tiny.tokenizer)
    items = get_task("chat").items(3)
    prompts = [tiny.tokenizer.apply_chat_template([{"role": "user", "content": i.question}], tokenize=False,
                                                  add_generation_prompt=True) for i in items]
    from r1lab.llm.generation import generate

    completions = generate(tiny.policy, tiny.tokenizer, prompts, SamplingSettings(8), torch.Generator().manual_seed(0))
    scores, metrics = rlhf_models.reward_model_scorer(reward_model, tiny.tokenizer)(items, prompts, completions)
    expected = reward_model.normalize(reward_model.score_texts(prompts, completions.texts))
    torch.testing.assert_close(scores, expected)
    (name, value), = metrics.items()
    assert name == f"rm_score/{reward_dir.parent.name}" and value == pytest.approx(expected.mean().item())


@pytest.mark.parametrize("shared", [False, True], ids=["separate critic", "shared critic"])
def test_micro_batches_accumulate_to_the_whole_batch_gradient(qwen2_dir, reward_dir, shared):
    config = small(qwen2_dir, reward_dir, shared_critic=shared, ent_coef=0.01)
    models, _, rollout, _ = rollout_of(config)
    rollout.advantages.normal_(generator=torch.Generator().manual_seed(1))  # a signal for every token
    parameters = models.policy_parameters() + models.critic_parameters()
    mask = rollout.mask

    def gradient(micro_batches):
        for p in parameters:
            p.grad = None
        tokens = mask.sum()
        for rows in micro_batches:
            rlhf.micro_batch_step(models, rollout, rows, tokens, config, train_policy=True)
        return [p.grad.clone() for p in parameters]

    whole = gradient([torch.arange(4)])
    split = gradient([torch.tensor([2, 0]), torch.tensor([3]), torch.tensor([1])])
    for a, b in zip(whole, split):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_the_cli_runs_on_a_prompt_file_with_a_given_reward_model(qwen2_dir, reward_dir, tmp_path):
    from typer.testing import CliRunner

    from r1lab.cli import app

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Say hello to {name}.", "harmful": False}) + "\n"
                               for name in ("Ben", "Ada", "Li", "Tom", "Uma", "Kofi")))
    result = CliRunner().invoke(app, ["rlhf", "--model", str(qwen2_dir), "--reward-model", str(reward_dir), "--data",
                                      str(prompts), "--steps", "1", "--prompts-per-step", "2", "--max-new-tokens", "4",
                                      "--run-dir", str(tmp_path / "run"), "--quiet", "--set", "eval_items=2",
                                      "--set", "eval_k=1"])
    assert result.exit_code == 0, result.output
    assert "rm_score" in result.output and "KL" in result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["before"]) == {"rm_score", "kl", "mean_length", "eos_share"}  # no rule check for these prompts
    assert summary["reward_models"] == {}


@pytest.mark.slow
def test_the_default_rlhf_job_meets_its_targets(tmp_path):
    """`r1lab rlhf` with no arguments: reward models of >= 0.95 held-out accuracy, then helpful
    answers >= 0.8 and refusals of harmful requests >= 0.9 by the task's own checks, the KL bounded."""
    from r1lab.pipelines.rlhf import RLHFJobConfig, run_rlhf_job

    summary = run_rlhf_job(RLHFJobConfig(), tmp_path, quiet=True)
    assert all(rm["eval_accuracy"] >= 0.95 for rm in summary["reward_models"].values())
    before, after = summary["before"], summary["after"]
    assert after["helpful_rate"] >= 0.8 and after["helpful_rate"] > before["helpful_rate"]
    assert after["harmless_rate"] >= 0.9
    assert summary["kl"] < 15
