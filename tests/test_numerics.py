"""Training numerics that hold on a GPU: fp32 master weights under bf16 autocast, pi_old from the
training forward, a KL term that regularises, one BOS, PPO's KL stop before the step, and a
sampler that copies its fused weights once per weights version."""

import pytest
import torch
from safetensors.torch import load_file

from r1lab.llm import decoding
from r1lab.llm.generation import SamplingSettings, encode_prompts, generate
from r1lab.llm.grpo import Batch, improve, train_grpo
from r1lab.llm.grpo_config import GRPOConfig
from r1lab.llm.loading import load_model, tiny_model_path
from r1lab.llm.precision import autocast, compute_dtype
from r1lab.llm.sft import encode_pairs
from r1lab.runs import ConfigError
from r1lab.tasks import get_task


def length_scorer(prompts, completions, fields):
    """A reward with variance in every group (the completion's length), so every step has a gradient."""
    return [float(len(text)) for text in completions], {}


def share_changed(before: dict, after: dict) -> float:
    changed = total = 0
    for name, weight in before.items():
        if weight.dim() == 2:
            changed += int((after[name] != weight).sum())
            total += weight.numel()
    return changed / total


def test_one_bf16_grpo_step_at_lr_1e6_changes_most_weights_and_saves_fp32(tmp_path):
    config = GRPOConfig(model="tiny", dtype="bfloat16", lr=1e-6, steps=1, group_size=4, prompts_per_step=4,
                        max_new_tokens=16, beta=0.0, log_samples_every=0, checkpoint_every=100, save_model=True)
    train_grpo(config, tmp_path, get_task("arithmetic").items(8, "train"), length_scorer, quiet=True)
    base = load_file(tiny_model_path() / "model.safetensors")
    saved = load_file(tmp_path / "model" / "model.safetensors")
    assert all(tensor.dtype == torch.float32 for tensor in saved.values())
    # with bf16 weights, 1e-6 updates round away on all but ~1 % of the elements
    assert share_changed(base, saved) > 0.5


def test_bf16_compute_keeps_the_policy_in_fp32_and_the_frozen_reference_in_bf16(qwen2_dir):
    loaded = load_model(qwen2_dir, dtype="bfloat16", reference=True)
    assert {p.dtype for p in loaded.policy.parameters()} == {torch.float32}
    assert {p.dtype for p in loaded.reference.parameters()} == {torch.bfloat16}
    assert compute_dtype(loaded.policy) == torch.bfloat16 == loaded.dtype
    ids = torch.tensor([[1, 2, 3]])
    with autocast(loaded.policy):
        logits = loaded.policy(input_ids=ids).logits
    assert logits.dtype == torch.float32  # the head runs in fp32 whatever the compute dtype


def test_float16_training_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="loss scaling"):
        load_model("tiny", dtype="float16")


def test_mu_above_one_takes_pi_old_from_the_training_forward_not_the_sampler(qwen2_dir, grpo_batch):
    """Corrupting the sampler's log-probs must not change a mu = 2 update at all."""
    c = grpo_batch.completions
    corrupted = Batch(grpo_batch.items, grpo_batch.prompts, type(c)(**{**c.__dict__, "logprobs": c.logprobs - 0.5}),
                      grpo_batch.rewards, grpo_batch.advantages)
    config = GRPOConfig(num_iterations=2, micro_batch_size=5, max_new_tokens=10, lr=1e-2)
    weights, metrics = [], []
    for batch in (grpo_batch, corrupted):
        torch.manual_seed(0)
        model = load_model(qwen2_dir, dtype="bfloat16").policy
        metrics.append(improve(model, None, torch.optim.AdamW(model.parameters(), lr=1e-2), batch, config))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
    assert metrics[0]["clip_fraction"] == metrics[1]["clip_fraction"]


def test_first_of_several_passes_clips_nothing(qwen2_dir, grpo_batch):
    """pi_old equals the policy before the first pass, so the first pass's ratio is exactly 1."""
    seen = []
    config = GRPOConfig(num_iterations=2, micro_batch_size=5, max_new_tokens=10, lr=1e-2)
    model = load_model(qwen2_dir, dtype="bfloat16").policy
    from r1lab.llm import grpo as grpo_module

    original = grpo_module.grpo_loss

    def recording(logprobs, old, *args, **kwargs):
        seen.append((logprobs.detach() - old).abs().max().item())
        return original(logprobs, old, *args, **kwargs)

    grpo_module.grpo_loss = recording
    try:
        improve(model, None, torch.optim.AdamW(model.parameters(), lr=1e-2), grpo_batch, config)
    finally:
        grpo_module.grpo_loss = original
    micro_batches = len(seen) // 2
    assert max(seen[:micro_batches]) == 0.0  # first pass: identical forwards
    assert max(seen[micro_batches:]) > 0.0  # second pass: the policy has moved


def test_k1_as_the_grpo_loss_term_is_refused_naming_k1_and_why():
    with pytest.raises(ConfigError, match="'k1'.*zero in expectation"):
        GRPOConfig(beta=0.04, kl_estimator="k1")
    GRPOConfig(beta=0.0, kl_estimator="k1")  # no KL term: nothing to refuse
    GRPOConfig(beta=0.04, kl_estimator="k2")


@pytest.fixture(scope="module")
def bos_tokenizer(small_tokenizer):
    """The small tokenizer with a BOS that it adds itself and that its chat template also writes,
    as Llama 3's does."""
    import copy

    from tokenizers import processors

    tokenizer = copy.deepcopy(small_tokenizer)
    tokenizer.add_special_tokens({"bos_token": "<|bos|>"})
    bos = tokenizer.bos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|bos|> $A", pair="<|bos|> $A <|bos|> $B", special_tokens=[("<|bos|>", bos)])
    tokenizer.chat_template = "{{ bos_token }}{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}Assistant:"
    return tokenizer


def test_templated_text_gets_one_bos_and_plain_text_gets_one_too(bos_tokenizer):
    from r1lab.llm.prompts import apply_template

    bos = bos_tokenizer.bos_token_id
    templated = apply_template("chat", "What is 2+3?", bos_tokenizer)
    assert templated.startswith("<|bos|>")
    ids, mask = encode_prompts(bos_tokenizer, [templated, "What is 2+3?"], "cpu")
    for row, row_mask in zip(ids, mask):
        real = row[row_mask.bool()].tolist()
        assert real[0] == bos and real.count(bos) == 1
    (sft_ids, _), = encode_pairs(bos_tokenizer, [{"prompt": "What is 2+3?", "completion": " 5"}], "chat", 128)
    assert sft_ids[0] == bos and sft_ids.count(bos) == 1


def test_the_sampler_fuses_weights_once_per_weights_version(qwen2_dir, monkeypatch):
    loaded = load_model(qwen2_dir)
    built = []
    original = decoding.FusedWeights.__init__

    def counting(self, model):
        built.append(1)
        original(self, model)

    monkeypatch.setattr(decoding.FusedWeights, "__init__", counting)
    settings = SamplingSettings(max_new_tokens=4)
    for _ in range(3):
        generate(loaded.policy, loaded.tokenizer, ["1+1=", "2+2="], settings)
    assert len(built) == 1
    optimizer = torch.optim.SGD(loaded.policy.parameters(), lr=0.1)
    loaded.policy(input_ids=torch.tensor([[1, 2, 3]])).logits.sum().backward()
    optimizer.step()  # the weights change in place: the next call must see them
    first = generate(loaded.policy, loaded.tokenizer, ["1+1="], SamplingSettings(max_new_tokens=4, temperature=0))
    assert len(built) == 2
    reloaded = load_model(qwen2_dir).policy
    reloaded.load_state_dict(loaded.policy.state_dict())
    again = generate(reloaded, loaded.tokenizer, ["1+1="], SamplingSettings(max_new_tokens=4, temperature=0))
    assert first.texts == again.texts


def test_ppo_kl_stop_skips_the_step_that_would_cross_the_threshold():
    import gymnasium as gym

    from r1lab.policy_gradient import PPOConfig
    from r1lab.policy_gradient.policies import ActorCritic, FlatParameters
    from r1lab.policy_gradient.ppo import Batch as PPOBatch
    from r1lab.policy_gradient.ppo import improve as ppo_improve

    torch.manual_seed(0)
    policy = ActorCritic(4, gym.spaces.Discrete(2), (16,), "tanh", False, 0.0)
    obs, actions = torch.randn(64, 4), torch.randint(0, 2, (64,))
    with torch.no_grad():
        dist_params, values = policy(obs)
        logp = policy.log_prob(dist_params, actions)
    batch = PPOBatch(obs, actions, logp, dist_params, values, torch.randn(64), values + torch.randn(64))
    params = FlatParameters(policy.parameters())
    optimizer = torch.optim.Adam([params.vector], lr=1e-2)
    steps = []
    original_step = optimizer.step
    optimizer.step = lambda *a, **k: (steps.append(1), original_step(*a, **k))[1]
    config = PPOConfig(env_id="CartPole-v1", epochs=5, minibatch_size=64, kl_stop=1e-9, steps_per_env=64, num_envs=1)
    stats = ppo_improve(policy, params, optimizer, batch, config, 0.2, 0.0)
    # epoch 1 starts at KL 0 and steps; epoch 2 sees KL > kl_stop before its step and stops
    assert len(steps) == 1 and stats["minibatch_steps"] == 1
