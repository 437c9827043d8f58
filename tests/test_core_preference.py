"""The reward model's loss and RLHF-PPO's per-token reward, GAE and KL control, against hand values."""

import math

import pytest
import torch

from r1lab.core import (
    adaptive_kl_controller,
    bradley_terry_loss,
    gae,
    kl_penalised_token_rewards,
    last_token_mask,
    reward_centering,
    token_level_gae,
)

# ---------------------------------------------------------------- Bradley-Terry and centering


def test_bradley_terry_loss_is_minus_log_sigmoid_of_the_gap():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert loss.tolist() == pytest.approx([math.log(1 + math.exp(-1)), math.log(1 + math.e)], abs=1e-6)


def test_a_margin_asks_for_a_larger_gap():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), margin=torch.tensor([0.5, 0.0]))
    assert loss.tolist() == pytest.approx([math.log(1 + math.exp(-0.5)), math.log(1 + math.e)], abs=1e-6)


def test_bradley_terry_loss_stays_finite_for_huge_gaps():
    loss = bradley_terry_loss(torch.tensor([-500.0, 500.0]), torch.tensor([500.0, -500.0]))
    assert loss.tolist() == pytest.approx([1000.0, 0.0], abs=1e-4)


def test_reward_centering_is_coef_times_mean_squared_sum():
    centring = reward_centering(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), coef=0.01)
    assert centring.item() == pytest.approx(0.01 * (9 + 1) / 2)


def test_centering_does_not_change_the_gradient_of_the_gap():
    chosen, rejected = torch.tensor([1.0], requires_grad=True), torch.tensor([-1.0], requires_grad=True)
    reward_centering(chosen, rejected, 0.01).backward()
    assert chosen.grad.item() == pytest.approx(0.0) and rejected.grad.item() == pytest.approx(0.0)


# ---------------------------------------------------------------- the per-token reward on a hand-built batch

# two completions: row 0 has three real tokens, row 1 two and one padding slot (with junk in it)
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
LOGP = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -1.0, 9.0]])
REF_LOGP = torch.tensor([[-1.5, -1.0, -0.5], [-2.0, -1.0, -3.0]])
SCORE = torch.tensor([2.0, -1.0])
BETA = 0.1
# k1 = logp - ref_logp = [[0.5, -1, 0], [1, 0, (padding)]]
HAND_REWARDS = [[-0.05, 0.1, 2.0], [-0.1, -1.0, 0.0]]


def test_last_token_mask_marks_each_rows_last_real_token():
    assert last_token_mask(MASK).tolist() == [[False, False, True], [False, True, False]]
    assert last_token_mask(torch.zeros(1, 3)).tolist() == [[False, False, False]]


def test_kl_at_every_real_token_and_the_score_at_the_last_one_nothing_on_padding():
    rewards, kl = kl_penalised_token_rewards(SCORE, LOGP, REF_LOGP, MASK, BETA)
    assert rewards.tolist() == [pytest.approx(row, abs=1e-6) for row in HAND_REWARDS]
    assert kl.tolist() == [pytest.approx([0.5, -1.0, 0.0]), pytest.approx([1.0, 0.0, 0.0])]
    # a sequence's rewards add up to its KL-penalised return
    assert rewards.sum(1).tolist() == pytest.approx((SCORE - BETA * kl.sum(1)).tolist(), abs=1e-6)


def test_k3_in_the_reward_is_never_negative():
    rewards, kl = kl_penalised_token_rewards(torch.zeros(2), LOGP, REF_LOGP, MASK, BETA, estimator="k3")
    d = REF_LOGP[0] - LOGP[0]  # row 0: log(pi_ref / pi) = [-0.5, 1, 0]
    assert kl[0].tolist() == pytest.approx((torch.exp(d) - d - 1).tolist(), abs=1e-6)
    assert (kl >= 0).all() and kl[1, 2] == 0
    torch.testing.assert_close(rewards, -BETA * kl)


def test_unknown_kl_estimator_is_refused():
    with pytest.raises(ValueError, match="unknown KL estimator 'k9'"):
        kl_penalised_token_rewards(SCORE, LOGP, REF_LOGP, MASK, BETA, estimator="k9")


# ---------------------------------------------------------------- token-level GAE on it

VALUES = torch.tensor([[1.0, 2.0, 3.0], [0.5, 1.0, 7.0]])  # 7: junk in the padding slot


def test_token_level_gae_equals_the_hand_computation():
    rewards, _ = kl_penalised_token_rewards(SCORE, LOGP, REF_LOGP, MASK, BETA)
    advantages, returns = token_level_gae(rewards, VALUES, MASK, gamma=1.0, lam=0.5)
    # row 0: deltas t2 = 2 - 3 = -1 (no bootstrap at the end), t1 = 0.1 + 3 - 2 = 1.1, t0 = -0.05 + 2 - 1 = 0.95
    #        A2 = -1, A1 = 1.1 + 0.5 * -1 = 0.6, A0 = 0.95 + 0.5 * 0.6 = 1.25
    # row 1: deltas t1 = -1 - 1 = -2, t0 = -0.1 + 1 - 0.5 = 0.4;  A1 = -2, A0 = 0.4 + 0.5 * -2 = -0.6
    assert advantages.tolist() == [pytest.approx([1.25, 0.6, -1.0]), pytest.approx([-0.6, -2.0, 0.0])]
    assert returns.tolist() == [pytest.approx([2.25, 2.6, 2.0]), pytest.approx([-0.1, -1.0, 0.0])]


def test_token_level_gae_is_core_gae_time_major():
    rewards, values = torch.randn(4, 6), torch.randn(4, 6)
    mask = (torch.arange(6) < torch.tensor([6, 3, 1, 5])[:, None]).float()
    advantages, returns = token_level_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    end = last_token_mask(mask)
    next_values = torch.cat([values[:, 1:], torch.zeros(4, 1)], 1)
    expected, expected_returns = gae(rewards.T, values.T, next_values.T, end.T, end.T, 0.9, 0.8)
    torch.testing.assert_close(advantages, expected.T * mask)
    torch.testing.assert_close(returns, expected_returns.T * mask)


def test_padding_never_reaches_the_real_tokens():
    rewards, _ = kl_penalised_token_rewards(SCORE, LOGP, REF_LOGP, MASK, BETA)
    junk_rewards, junk_values = rewards.clone(), VALUES.clone()
    junk_rewards[1, 2], junk_values[1, 2] = 1e6, -1e6
    a, _ = token_level_gae(rewards, VALUES, MASK, 1.0, 0.5)
    b, _ = token_level_gae(junk_rewards, junk_values, MASK, 1.0, 0.5)
    torch.testing.assert_close(a, b)


def test_lambda_one_gives_the_score_minus_the_value():
    rewards = torch.tensor([[0.0, 0.0, 5.0]])
    values = torch.tensor([[1.0, 2.0, 4.0]])
    advantages, _ = token_level_gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    assert advantages.tolist() == [pytest.approx([4.0, 3.0, 1.0])]


# ---------------------------------------------------------------- adaptive KL control


@pytest.mark.parametrize(("kl", "error"), [(12.0, 0.2), (6.6, 0.1), (6.0, 0.0), (3.0, -0.2), (0.0, -0.2)])
def test_ziegler_controller_moves_beta_by_the_clipped_error(kl, error):
    beta = adaptive_kl_controller(0.1, kl, target_kl=6.0, n_samples=256, horizon=10_000)
    assert beta == pytest.approx(0.1 * (1 + error * 256 / 10_000))
