"""Padding-free forwards: the packed layout on a hand case, and the same log-probs, values and
gradients as the padded forward on the bundled model."""

import pytest
import torch

from r1lab.llm.loading import load_model
from r1lab.llm.logprobs import token_logprobs
from r1lab.llm.packing import pack
from r1lab.llm.value_model import critic_values, load_critic


def test_pack_lays_each_sequence_end_to_end_with_its_own_positions():
    # row 0: prompt [5, 6] (one left pad), completion [7]; row 1: prompt [8], completion [9, 10]
    prompt_ids = torch.tensor([[0, 5, 6], [0, 0, 8]])
    prompt_mask = torch.tensor([[0, 1, 1], [0, 0, 1]])
    completion_ids = torch.tensor([[7, 0], [9, 10]])
    completion_mask = torch.tensor([[1, 0], [1, 1]])
    packed = pack(prompt_ids, prompt_mask, completion_ids, completion_mask, capacity=8)
    assert packed.input_ids.tolist() == [[5, 6, 7, 8, 9, 10, 0, 0]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 1, 2, 0, 1]]  # the tail is a sequence of its own
    # state t of a row: its last prompt token, then each completion token; past the end, its last token
    assert packed.index.tolist() == [[1, 2, 2], [3, 4, 5]]


def test_pack_opens_a_new_row_when_a_sequence_does_not_fit():
    prompt_ids, prompt_mask = torch.tensor([[1, 2], [3, 4]]), torch.ones(2, 2, dtype=torch.long)
    completion_ids, completion_mask = torch.tensor([[5, 6], [7, 8]]), torch.ones(2, 2)
    packed = pack(prompt_ids, prompt_mask, completion_ids, completion_mask, capacity=6)
    assert packed.input_ids.shape == (2, 6)


def _batch(seed: int = 0, rows: int = 12, prompt_width: int = 9, width: int = 14):
    generator = torch.Generator().manual_seed(seed)
    prompt_lengths = torch.randint(3, prompt_width + 1, (rows,), generator=generator)
    lengths = torch.randint(1, width + 1, (rows,), generator=generator)
    prompt_mask = (torch.arange(prompt_width)[None] >= prompt_width - prompt_lengths[:, None]).long()
    completion_mask = (torch.arange(width)[None] < lengths[:, None]).float()
    prompt_ids = torch.randint(5, 1000, (rows, prompt_width), generator=generator) * prompt_mask
    prompt_ids[1] = prompt_ids[0]  # a repeated prompt, as in a group of samples
    prompt_mask[1] = prompt_mask[0]
    completion_ids = torch.randint(5, 1000, (rows, width), generator=generator) * completion_mask.long()
    return prompt_ids, prompt_mask, completion_ids, completion_mask


@pytest.fixture(scope="module")
def policy():
    model = load_model("tiny").policy
    model.eval()
    return model


def _close(expected: list[torch.Tensor], got: list[torch.Tensor]) -> bool:
    """Equal to float tolerance: each gradient within 1e-5 of its largest entry (summation order differs)."""
    return all(float((a - b).abs().max()) <= 1e-5 * float(a.abs().max()) for a, b in zip(expected, got))


def _gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_padding_free_log_probs_and_their_gradient_equal_the_padded_forward(policy):
    batch = _batch()
    plain, plain_entropy = token_logprobs(policy, *batch, temperature=0.7, with_entropy=True)
    packed, packed_entropy = token_logprobs(policy, *batch, temperature=0.7, with_entropy=True, padding_free=True)
    assert torch.allclose(plain, packed, atol=1e-5) and torch.allclose(plain_entropy, packed_entropy, atol=1e-5)
    weights = torch.linspace(0.5, 1.5, plain.numel()).reshape(plain.shape)
    expected = _gradients(policy, (token_logprobs(policy, *batch)[0] * weights).sum())
    got = _gradients(policy, (token_logprobs(policy, *batch, padding_free=True)[0] * weights).sum())
    assert len(expected) == len(got) and _close(expected, got)


def test_padding_free_critic_values_equal_the_padded_forward():
    critic = load_critic("tiny", from_reward_model=False)
    batch = _batch(seed=1)
    plain = critic_values(critic, *batch)
    packed = critic_values(critic, *batch, padding_free=True)
    assert torch.allclose(plain, packed, atol=1e-5)
    expected = _gradients(critic, critic_values(critic, *batch).pow(2).sum())
    got = _gradients(critic, critic_values(critic, *batch, padding_free=True).pow(2).sum())
    assert len(expected) == len(got) and _close(expected, got)


def test_padding_free_reward_scores_equal_the_padded_forward(tmp_path):
    from r1lab.llm.reward_model import RewardModel, new_reward_model

    model, tokenizer, _ = new_reward_model("tiny")
    model.eval()
    reward_model = RewardModel(model, tokenizer, 0.0, 1.0, "tiny")
    batch = _batch(seed=2)
    assert torch.allclose(reward_model.score_tokens(*batch), reward_model.score_tokens(*batch, padding_free=True),
                          atol=1e-5)


@pytest.mark.parametrize("fixture", ["qwen2_dir", "gpt2_dir"])
def test_padding_free_log_probs_hold_for_other_architectures(fixture, request):
    model = load_model(str(request.getfixturevalue(fixture))).policy
    model.eval()
    prompt_ids, prompt_mask, completion_ids, completion_mask = _batch(seed=3)
    vocab = model.get_input_embeddings().num_embeddings
    batch = (prompt_ids % vocab, prompt_mask, completion_ids % vocab, completion_mask)
    plain, _ = token_logprobs(model, *batch)
    packed, _ = token_logprobs(model, *batch, padding_free=True)
    assert torch.allclose(plain, packed, atol=1e-5)
