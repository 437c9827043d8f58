"""GRPO: the objective by hand, the gradient it gives, and a trainer that survives bad rewards and kills."""

import json
import math
from dataclasses import replace

import pytest
import torch

from r1lab.llm import grpo as grpo_module
from r1lab.llm.grpo import PromptStream, grpo_loss, improve, train_grpo
from r1lab.llm.grpo_config import GRPOConfig
from r1lab.llm.loading import load_model
from r1lab.llm.logprobs import token_logprobs
from r1lab.pipelines.r1_zero import GRPOJobConfig, run_grpo_job
from r1lab.rewards import RewardFunction, reward_functions, scorer
from r1lab.runs import ConfigError, load_config
from r1lab.tasks import get_task

# Two completions, three token slots, the second slot of row 0 outside the clip range.
# old log-probs are 0, so the ratios are exp(logp): [[1, e^0.5, -], [1, e^-0.5, e^0.1]].
LOGP = torch.tensor([[0.0, 0.5, 0.0], [0.0, -0.5, 0.1]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
ADV = torch.tensor([[1.0], [-1.0]])
# per-token losses -min(rA, clip(r, 0.8, 1.2)A):
#   row 0 (A=+1): -1, -min(1.6487, 1.2) = -1.2
#   row 1 (A=-1): +1, -min(-0.6065, -0.8) = 0.8, -min(-1.1052, -1.1052) = 1.1052
E01 = math.exp(0.1)
BY_HAND = {
    "grpo": ((-1 - 1.2) / 2 + (1 + 0.8 + E01) / 3) / 2,  # mean per sequence, then over sequences
    "bnpo": (-1 - 1.2 + 1 + 0.8 + E01) / 5,  # mean over the 5 tokens
    "dapo": (-1 - 1.2 + 1 + 0.8 + E01) / 5,
    "dr_grpo": ((-1 - 1.2) / 4 + (1 + 0.8 + E01) / 4) / 2,  # sums over the constant max length 4
}


@pytest.mark.parametrize("loss_type", list(BY_HAND))
def test_loss_matches_the_hand_computed_objective(loss_type):
    config = GRPOConfig(loss_type=loss_type, max_new_tokens=4, clip_low=0.2, clip_high=0.2)
    loss, terms, kl = grpo_loss(LOGP, torch.zeros_like(LOGP), ADV, MASK, config)
    assert loss.item() == pytest.approx(BY_HAND[loss_type], abs=1e-6)
    assert terms.clipped.tolist() == [[False, True, False], [False, True, False]]
    assert kl is None


def test_kl_term_adds_beta_times_k3_per_token():
    config = GRPOConfig(loss_type="bnpo", beta=0.5)
    reference = LOGP - 0.1  # k3 = e^-0.1 + 0.1 - 1 on every token
    with_kl, _, kl = grpo_loss(LOGP, torch.zeros_like(LOGP), ADV, MASK, config, reference)
    without, _, _ = grpo_loss(LOGP, torch.zeros_like(LOGP), ADV, MASK, GRPOConfig(loss_type="bnpo"))
    k3 = math.exp(-0.1) + 0.1 - 1
    assert with_kl.item() == pytest.approx(without.item() + 0.5 * k3, abs=1e-6)
    assert torch.allclose(kl, torch.full_like(kl, k3))


def test_clip_higher_lets_positive_advantages_move_further():
    loss, terms, _ = grpo_loss(LOGP, torch.zeros_like(LOGP), ADV, MASK, GRPOConfig(clip_low=0.2, clip_high=0.7))
    assert not terms.clipped[0, 1]  # e^0.5 = 1.65 < 1.7: no longer clipped


@pytest.mark.parametrize("loss_type", list(BY_HAND))
def test_with_one_iteration_the_ratio_is_one_and_the_gradient_is_the_plain_policy_gradient(loss_type):
    config = GRPOConfig(loss_type=loss_type, max_new_tokens=4)
    logits = torch.randn(2, 3, 5, requires_grad=True)
    tokens = torch.tensor([[1, 2, 0], [3, 4, 1]])
    logp = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    loss, terms, _ = grpo_loss(logp, logp.detach(), ADV, MASK, config)
    assert torch.allclose(terms.ratio, torch.ones_like(logp))
    (grpo_grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
    policy_gradient_loss = grpo_module.aggregate_loss(-ADV * logp, MASK, config.aggregation, max_length=4)
    (pg_grad,) = torch.autograd.grad(policy_gradient_loss, logits)
    torch.testing.assert_close(grpo_grad, pg_grad)
    # the value is only the aggregated -A, about 0 once advantages are centred per group
    value_only = grpo_module.aggregate_loss(-ADV.expand_as(MASK), MASK, config.aggregation, max_length=4)
    assert loss.item() == pytest.approx(value_only.item(), abs=1e-6)


# bnpo is, by definition, a token mean over each micro-batch (TRL's per-device batch), so its
# gradient depends on how the step is split; the other three do not.
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_micro_batches_accumulate_to_the_full_batch_gradient(qwen2_dir, grpo_batch, loss_type):
    grads = []
    for micro in (16, 3):
        model = load_model(qwen2_dir).policy
        config = GRPOConfig(loss_type=loss_type, micro_batch_size=micro, max_new_tokens=10, max_grad_norm=1e9)
        improve(model, None, torch.optim.SGD(model.parameters(), lr=0.0), grpo_batch, config)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)


RAGGED_LENGTHS = torch.tensor([1, 10, 3, 7, 2, 9, 5, 4, 10, 6, 8, 2, 3, 1, 7, 5])


def ragged(batch):
    """The batch with its completions cut to RAGGED_LENGTHS, and their completion mask."""
    c = batch.completions
    mask = (torch.arange(c.completion_mask.shape[1])[None] < RAGGED_LENGTHS[:, None]).float()
    return replace(batch, completions=replace(c, completion_mask=mask)), mask


def test_length_sorted_trimmed_micro_batches_give_the_untrimmed_full_batch_gradient(qwen2_dir, grpo_batch):
    batch, mask = ragged(grpo_batch)
    c = batch.completions
    config = GRPOConfig(loss_type="grpo", micro_batch_size=3, max_new_tokens=10, max_grad_norm=1e9)

    model = load_model(qwen2_dir).policy
    improve(model, None, torch.optim.SGD(model.parameters(), lr=0.0), batch, config)
    trimmed_grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    reference = load_model(qwen2_dir).policy  # one pass over the padded batch as it came
    logprobs, _ = token_logprobs(reference, c.prompt_ids, c.prompt_mask, c.completion_ids, mask, temperature=1.0)
    loss, _, _ = grpo_loss(logprobs, logprobs.detach(), batch.advantages[:, None], mask, config)
    loss.backward()
    reference_grad = torch.cat([p.grad.flatten() for p in reference.parameters() if p.grad is not None])
    torch.testing.assert_close(trimmed_grad, reference_grad, atol=1e-6, rtol=1e-4)


def test_bnpo_micro_batches_keep_the_sampled_order(qwen2_dir, grpo_batch):
    batch, mask = ragged(grpo_batch)
    c = batch.completions
    config = GRPOConfig(loss_type="bnpo", micro_batch_size=3, max_new_tokens=10, max_grad_norm=1e9)

    model = load_model(qwen2_dir).policy
    improve(model, None, torch.optim.SGD(model.parameters(), lr=0.0), batch, config)
    ours = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    reference = load_model(qwen2_dir).policy  # token means over rows 0-2, 3-5, ..., 15, as sampled
    for rows in torch.arange(16).split(3):
        logprobs, _ = token_logprobs(reference, c.prompt_ids[rows], c.prompt_mask[rows], c.completion_ids[rows],
                                     mask[rows], temperature=1.0)
        loss, _, _ = grpo_loss(logprobs, logprobs.detach(), batch.advantages[rows, None], mask[rows], config)
        (loss * len(rows) / 16).backward()
    expected = torch.cat([p.grad.flatten() for p in reference.parameters() if p.grad is not None])
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=1e-4)


def test_micro_batches_group_rows_of_similar_length_and_drop_all_padding_columns(grpo_batch):
    batch, mask = ragged(grpo_batch)
    c = batch.completions
    micro_batches = grpo_module.length_sorted_micro_batches(mask, 4)
    assert [RAGGED_LENGTHS[rows].tolist() for rows in micro_batches] == [[1, 1, 2, 2], [3, 3, 4, 5], [5, 6, 7, 7],
                                                                  [8, 9, 10, 10]]
    prompt_ids, prompt_mask, completion_ids, completion_mask, width = grpo_module.trimmed(
        c, micro_batches[0])
    assert width == 2 and completion_ids.shape == (4, 2) and completion_mask.shape == (4, 2)
    assert prompt_mask[:, 0].any() and prompt_ids.shape == prompt_mask.shape  # no all-padding column left
    assert prompt_mask.sum() == c.prompt_mask[micro_batches[0]].sum()  # and no real token lost


def test_zero_beta_never_builds_a_reference_model(small_config, qwen2_dir, tmp_path, monkeypatch):
    requested = []
    real_load = grpo_module.load_model

    def spying_load(*args, **kwargs):
        requested.append(kwargs["reference"])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(grpo_module, "load_model", spying_load)
    items = get_task("arithmetic").items(20)
    train_grpo(small_config(qwen2_dir, steps=1, beta=0.0), tmp_path / "a", items, scorer(reward_functions(["format"])), quiet=True)
    train_grpo(small_config(qwen2_dir, steps=1, beta=0.1), tmp_path / "b", items, scorer(reward_functions(["format"])), quiet=True)
    assert requested == [False, True]


def test_a_raising_reward_function_is_contained_and_counted(small_config, qwen2_dir, tmp_path):
    def flaky(prompts, completions, **_):
        if len(completions) > 1:
            raise ZeroDivisionError("batch scoring broke")
        return [1.0 if len(completions[0]) % 2 else 0.0]

    items = get_task("arithmetic").items(20)
    summary = train_grpo(small_config(qwen2_dir, steps=2), tmp_path / "run", items,
                         scorer([RewardFunction("flaky", flaky)]), quiet=True)
    assert summary["steps"] == 2
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(m["reward_failures/flaky"] == 0 for m in metrics)  # the batch call failed, each sample then scored
    assert (tmp_path / "run" / "samples.jsonl").exists()


def test_resume_continues_a_killed_run_to_the_same_parameters(small_config, qwen2_dir, tmp_path):
    items = get_task("arithmetic").items(50)
    config = small_config(qwen2_dir, steps=4, checkpoint_every=2, save_model=True, temperature=1.5)
    rewards = scorer([RewardFunction("length", lambda p, c, **_: [len(t) / 10 for t in c])])
    train_grpo(config, tmp_path / "whole", items, rewards, quiet=True)
    assert train_grpo(config, tmp_path / "killed", items, rewards, quiet=True, stop_after=3) == {"stopped_at": 3}
    train_grpo(config, tmp_path / "killed", items, rewards, quiet=True, resume=True)
    whole = load_model(tmp_path / "whole" / "model").policy.state_dict()
    resumed = load_model(tmp_path / "killed" / "model").policy.state_dict()
    for name, tensor in whole.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)
    steps = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # the step logged after the checkpoint at 2 was replaced, not duplicated


def test_prompt_stream_restores_the_data_order():
    items = get_task("arithmetic").items(7)
    stream = PromptStream(items, seed=3)
    stream.take(10)
    resumed = PromptStream(items, seed=3)
    resumed.restore(stream.state())
    assert [i.question for i in stream.take(9)] == [i.question for i in resumed.take(9)]


def test_group_size_of_one_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="group_size.*>= 2"):
        load_config(GRPOConfig, sets=["group_size=1"])


def test_reference_resets_with_lora_are_refused_with_the_reason():
    with pytest.raises(ConfigError, match="ref_reset_every.*LoRA"):
        load_config(GRPOConfig, sets=["beta=0.04", "ref_reset_every=10", "lora.rank=8"])
    load_config(GRPOConfig, sets=["beta=0.04", "ref_reset_every=10"])  # fine without LoRA


def test_without_the_r1_zero_template_the_accuracy_reward_reads_the_last_number():
    from r1lab.pipelines.r1_zero import default_rewards

    completion, fields = [" 40+2: 2+0+0=2, 42. So 40+2=42."], {"answer": ["42"]}
    (plain,) = default_rewards(GRPOConfig(template="plain", rewards=["accuracy"]))
    (tagged,) = default_rewards(GRPOConfig(template="r1-zero", rewards=["accuracy"]))
    assert plain(["What is 40+2?"], completion, fields) == [1.0]
    assert tagged(["What is 40+2?"], completion, fields) == [0.0]  # no <answer> tags: not answered


def test_unknown_reward_and_malformed_dataset_row_are_clear_errors(qwen2_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown reward 'accuracyy'"):
        run_grpo_job(GRPOJobConfig(model=str(qwen2_dir), rewards=["accuracyy"]), tmp_path / "a", quiet=True)
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "1+1?", "answer": "2"}\n{"prompt": "2+2?"}\n')
    with pytest.raises(ValueError, match=r"data.jsonl:2: missing field 'answer'"):
        run_grpo_job(GRPOJobConfig(model=str(qwen2_dir), dataset=str(data)), tmp_path / "b", quiet=True)


def test_padding_aware_micro_batches_give_a_long_tail_its_own_micro_batch():
    lengths = torch.tensor([5] * 14 + [120, 128])
    mask = (torch.arange(128)[None] < lengths[:, None]).float()
    micro_batches = grpo_module.padding_aware_micro_batches(mask, micro=16, overhead=64)
    assert sorted(torch.cat(micro_batches).tolist()) == list(range(16))  # every row once
    widths = [int(lengths[rows].max()) for rows in micro_batches]
    assert widths == [5, 128]  # 14 x 5 + 2 x 128 + 2 x 64 instead of 16 x 128 + 64
    assert max(len(rows) for rows in grpo_module.padding_aware_micro_batches(mask, micro=4)) <= 4
    flat = grpo_module.padding_aware_micro_batches(torch.ones(8, 10), micro=8, overhead=64)
    assert len(flat) == 1  # equal lengths: cutting saves nothing
