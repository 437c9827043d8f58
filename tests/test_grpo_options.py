"""GRPO's DAPO-style options: over-long shaping, dynamic sampling, truncation masking, reference resets."""

import json
from dataclasses import replace

import torch

from r1lab.core.shaping import overlong_penalty
from r1lab.llm.grpo import improve, train_grpo
from r1lab.llm.grpo_config import GRPOConfig
from r1lab.llm.loading import load_model
from r1lab.rewards import RewardFunction, scorer
from r1lab.tasks import get_task


def test_overlong_penalty_ramps_over_the_buffer():
    # max 10 tokens, buffer 4: free up to 6, then -1/4 per token, -1 at the cap
    lengths = torch.tensor([3, 6, 7, 8, 10])
    assert overlong_penalty(lengths, max_length=10, buffer=4).tolist() == [0.0, 0.0, -0.25, -0.5, -1.0]
    assert overlong_penalty(lengths, 10, 0).tolist() == [0.0] * 5


def read_metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_dynamic_sampling_drops_groups_without_signal_and_samples_more(small_config, qwen2_dir, tmp_path):
    items = get_task("arithmetic").items(40)
    # half the prompts (those with '+') always score 1: their groups carry no signal
    flat_for_addition = RewardFunction("mixed", lambda p, c, **f: [1.0 if "+" in q else float(len(t) % 2)
                                                                    for q, t in zip(p, c)])
    config = small_config(qwen2_dir, steps=2, dynamic_sampling=True, max_sampling_rounds=3, prompts_per_step=4)
    train_grpo(config, tmp_path / "run", items, scorer([flat_for_addition]), quiet=True)
    metrics = read_metrics(tmp_path / "run")
    assert all(m["zero_variance_groups"] > 0 for m in metrics)
    assert any(m["sampling_rounds"] > 1 for m in metrics)


def test_masking_truncated_completions_removes_their_gradient(qwen2_dir, grpo_batch):
    batch = grpo_batch
    truncated = batch.completions.truncated
    assert truncated.any()
    model = load_model(qwen2_dir).policy
    config = GRPOConfig(mask_truncated=True, max_new_tokens=10, max_grad_norm=1e9)
    only_truncated_advantage = batch.advantages * truncated.float()  # the rest have A = 0 anyway
    masked = replace(batch, advantages=only_truncated_advantage)
    improve(model, None, torch.optim.SGD(model.parameters(), lr=0.0), masked, config)
    assert all(p.grad is None or p.grad.abs().max() == 0 for p in model.parameters())


def test_the_reference_model_is_reset_to_the_policy_every_n_steps(small_config, qwen2_dir, tmp_path, monkeypatch):
    from r1lab.llm import grpo as grpo_module

    seen = {}
    real_improve = grpo_module.improve

    def spying_improve(policy, reference, *args, **kwargs):
        seen.setdefault("reference", reference)
        seen.setdefault("initial", {k: v.clone() for k, v in reference.state_dict().items()})
        return real_improve(policy, reference, *args, **kwargs)

    monkeypatch.setattr(grpo_module, "improve", spying_improve)
    items = get_task("arithmetic").items(20)
    rewards = scorer([RewardFunction("length", lambda p, c, **_: [len(t) / 10 for t in c])])
    config = small_config(qwen2_dir, steps=2, beta=0.1, ref_reset_every=2, save_model=True, lr=1e-2)
    train_grpo(config, tmp_path / "run", items, rewards, quiet=True)
    trained = load_model(tmp_path / "run" / "model").policy.state_dict()
    reference = seen["reference"].state_dict()
    assert any(not torch.equal(seen["initial"][k], reference[k]) for k in reference)  # it moved ...
    assert all(torch.allclose(trained[k], reference[k]) for k in reference)  # ... to the policy
