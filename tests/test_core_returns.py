"""Returns and advantages: hand-worked cases, then slow loop references on random rollouts."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from r1lab.core import (
    discounted_returns,
    episode_returns,
    gae,
    group_advantages,
    group_reward_std,
    whiten,
)

FAST = settings(max_examples=40, deadline=None)


def column(*values):
    """A (T, 1) float64 tensor: one environment, T steps."""
    return torch.tensor(values, dtype=torch.float64).unsqueeze(1)


@st.composite
def rollouts(draw):
    """A random time-major rollout: (T, N) rewards, values, next values, terminated, truncated."""
    steps, envs = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    numbers = st.floats(-5, 5, allow_nan=False)

    def table(elements):
        flat = draw(st.lists(elements, min_size=steps * envs, max_size=steps * envs))
        return [flat[t * envs : (t + 1) * envs] for t in range(steps)]

    terminated = table(st.booleans())
    truncated = table(st.booleans())
    episode_end = [[a or b for a, b in zip(x, y, strict=True)] for x, y in zip(terminated, truncated, strict=True)]
    return {
        "rewards": table(numbers),
        "values": table(numbers),
        "next_values": table(numbers),
        "terminated": terminated,
        "episode_end": episode_end,
        "gamma": draw(st.floats(0.0, 1.0)),
        "lam": draw(st.floats(0.0, 1.0)),
    }


def as_tensor(table):
    return torch.tensor(table, dtype=torch.float64)


# ---------------------------------------------------------------- slow references


def reference_gae(r, v, nv, term, end, gamma, lam):
    steps, envs = len(r), len(r[0])
    adv = [[0.0] * envs for _ in range(steps)]
    for n in range(envs):
        for t in range(steps):
            # A_t = sum_l (gamma lam)^l delta_{t+l}, summed forward until the episode ends
            total, weight = 0.0, 1.0
            for k in range(t, steps):
                delta = r[k][n] + (0.0 if term[k][n] else gamma * nv[k][n]) - v[k][n]
                total += weight * delta
                if end[k][n]:
                    break
                weight *= gamma * lam
            adv[t][n] = total
    return adv


def reference_reward_to_go(r, end, gamma, bootstrap):
    steps, envs = len(r), len(r[0])
    out = [[0.0] * envs for _ in range(steps)]
    for n in range(envs):
        for t in range(steps):
            total, weight, ended = 0.0, 1.0, False
            for k in range(t, steps):
                total += weight * r[k][n]
                weight *= gamma
                if end[k][n]:
                    ended = True
                    break
            out[t][n] = total if ended else total + weight * bootstrap[n]
    return out


def reference_episode_returns(r, end, gamma):
    steps, envs = len(r), len(r[0])
    out = [[0.0] * envs for _ in range(steps)]
    for n in range(envs):
        start = 0
        for t in range(steps):
            if end[t][n] or t == steps - 1:
                total = sum(gamma ** (k - start) * r[k][n] for k in range(start, t + 1))
                for k in range(start, t + 1):
                    out[k][n] = total
                start = t + 1
    return out


# ---------------------------------------------------------------- gae


def hand_worked_gae(next_values=(1.0, 4.0, 7.0)):
    """3 steps, gamma=0.9, lam=0.8: step 0 runs on, step 1 is truncated, step 2 terminates.

    delta_2 = 3 + 0.9*7*(1-1) - 2.0 = 1.0                    A_2 = 1.0
    delta_1 = 2 + 0.9*4 - 1.0 = 4.6 (truncated: bootstraps)   A_1 = 4.6 + 0.72*(1-1)*A_2 = 4.6
    delta_0 = 1 + 0.9*1 - 0.5 = 1.4                           A_0 = 1.4 + 0.72*4.6 = 4.712
    returns = A + V = [5.212, 5.6, 3.0]
    """
    return gae(
        rewards=column(1.0, 2.0, 3.0),
        values=column(0.5, 1.0, 2.0),
        next_values=column(*next_values),
        terminated=column(0, 0, 1),
        episode_end=column(0, 1, 1),
        gamma=0.9,
        lam=0.8,
    )


def test_gae_matches_hand_worked_three_steps():
    advantages, returns = hand_worked_gae()
    torch.testing.assert_close(advantages, column(4.712, 4.6, 1.0))
    torch.testing.assert_close(returns, column(5.212, 5.6, 3.0))


def test_truncated_episode_bootstraps_from_final_observation():
    # V(final observation) 4 -> 5 raises delta_1 by gamma * 1 = 0.9, and A_0 by 0.72 * 0.9
    advantages, _ = hand_worked_gae(next_values=(1.0, 5.0, 7.0))
    torch.testing.assert_close(advantages, column(4.712 + 0.648, 5.5, 1.0))


def test_terminated_episode_does_not_bootstrap():
    advantages, _ = hand_worked_gae(next_values=(1.0, 4.0, -100.0))
    torch.testing.assert_close(advantages, column(4.712, 4.6, 1.0))


def test_unfinished_episode_bootstraps_at_the_rollout_edge():
    # one step, no end: A = r + gamma V(s_T) - V(s_0) = 1 + 0.5*3 - 2 = 0.5
    advantages, _ = gae(column(1.0), column(2.0), column(3.0), column(0), column(0), gamma=0.5, lam=0.9)
    torch.testing.assert_close(advantages, column(0.5))


def test_gae_environments_are_independent_columns():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zeros, ends = torch.zeros(2, 2), torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    advantages, _ = gae(rewards, zeros, zeros, ends, ends, gamma=0.5, lam=1.0)
    # env 0: A_0 = 1 + 0.5*0, A_1 = 0; env 1 ends at step 0, so step 1's reward never reaches it
    torch.testing.assert_close(advantages, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))


@FAST
@given(rollouts())
def test_gae_matches_slow_reference(rollout):
    expected = reference_gae(*(rollout[k] for k in ("rewards", "values", "next_values", "terminated",
                                                     "episode_end", "gamma", "lam")))
    advantages, returns = gae(*(as_tensor(rollout[k]) for k in ("rewards", "values", "next_values",
                                                               "terminated", "episode_end")),
                              gamma=rollout["gamma"], lam=rollout["lam"])
    torch.testing.assert_close(advantages, as_tensor(expected))
    torch.testing.assert_close(returns, as_tensor(expected) + as_tensor(rollout["values"]))


@FAST
@given(rollouts())
def test_gae_with_lambda_one_is_reward_to_go_minus_value(rollout):
    # consistent values (V(s_{t+1}) is the next step's V) and no truncation: the values telescope
    # away and only the bootstrap at the rollout's edge remains
    rewards, values, next_values = (as_tensor(rollout[k]) for k in ("rewards", "values", "next_values"))
    next_values = torch.cat([values[1:], next_values[-1:]])
    ends = as_tensor(rollout["terminated"])
    advantages, _ = gae(rewards, values, next_values, ends, ends, gamma=rollout["gamma"], lam=1.0)
    reward_to_go = discounted_returns(rewards, ends, rollout["gamma"], bootstrap=next_values[-1])
    torch.testing.assert_close(advantages, reward_to_go - values)


def test_gae_with_lambda_zero_is_the_td_residual():
    rewards, values, next_values = torch.randn(3, 5, 2, dtype=torch.float64).unbind(0)
    ends = torch.zeros(5, 2, dtype=torch.float64)
    advantages, _ = gae(rewards, values, next_values, ends, ends, gamma=0.9, lam=0.0)
    torch.testing.assert_close(advantages, rewards + 0.9 * next_values - values)


def test_gae_token_level_use_with_right_padding_and_mask():
    # two sequences (B=2) of up to 3 tokens; the second has 2 real tokens and one pad
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 9.0]])  # score at the last real token
    values = torch.tensor([[0.5, 0.5, 0.5], [0.5, 1.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    next_values = torch.cat([values[:, 1:], torch.zeros(2, 1)], dim=1)
    last = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    advantages, returns = gae(rewards.T, values.T, next_values.T, last.T, last.T, gamma=1.0, lam=1.0, mask=mask.T)
    # lam = gamma = 1: A_t = (sum of rewards from t) - V_t; the pad's 9s never reach the real tokens
    torch.testing.assert_close(advantages.T, torch.tensor([[0.5, 0.5, 0.5], [1.5, 1.0, 0.0]]))
    torch.testing.assert_close(returns.T, torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]]))


# ---------------------------------------------------------------- discounted and episode returns


def test_discounted_returns_hand_worked():
    # gamma 0.5, episode ends at step 1, bootstrap 10 after the last step:
    # G_3 = 4 + 0.5*10 = 9; G_2 = 3 + 0.5*9 = 7.5; G_1 = 2 (ended); G_0 = 1 + 0.5*2 = 2
    got = discounted_returns(column(1, 2, 3, 4), column(0, 1, 0, 0), 0.5, bootstrap=torch.tensor([10.0]))
    torch.testing.assert_close(got, column(2.0, 2.0, 7.5, 9.0))


def test_discounted_returns_ignore_bootstrap_after_an_ended_last_step():
    got = discounted_returns(column(1, 2), column(0, 1), 0.5, bootstrap=torch.tensor([100.0]))
    torch.testing.assert_close(got, column(2.0, 2.0))


@FAST
@given(rollouts())
def test_discounted_returns_match_slow_reference(rollout):
    envs = len(rollout["rewards"][0])
    bootstrap = [float(n) - 1.5 for n in range(envs)]
    expected = reference_reward_to_go(rollout["rewards"], rollout["episode_end"], rollout["gamma"], bootstrap)
    got = discounted_returns(as_tensor(rollout["rewards"]), torch.tensor(rollout["episode_end"]),
                             rollout["gamma"], bootstrap=as_tensor(bootstrap))
    torch.testing.assert_close(got, as_tensor(expected))


def test_episode_returns_credit_every_step_with_its_whole_episode():
    # gamma 0.5: episode [0, 1]: 1 + 0.5*2 = 2; episode [2, 3] (cut by the rollout): 3 + 0.5*4 = 5
    got = episode_returns(column(1, 2, 3, 4), column(0, 1, 0, 0), 0.5)
    torch.testing.assert_close(got, column(2.0, 2.0, 5.0, 5.0))


@FAST
@given(rollouts())
def test_episode_returns_match_slow_reference(rollout):
    expected = reference_episode_returns(rollout["rewards"], rollout["episode_end"], rollout["gamma"])
    got = episode_returns(as_tensor(rollout["rewards"]), torch.tensor(rollout["episode_end"]), rollout["gamma"])
    torch.testing.assert_close(got, as_tensor(expected))


# ---------------------------------------------------------------- whiten


def test_whiten_hand_worked():
    # mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25, std 1.1180340
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    expected = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64) / math.sqrt(1.25)
    torch.testing.assert_close(whiten(x, eps=0.0), expected)
    torch.testing.assert_close(whiten(x, shift_mean=False, eps=0.0), expected + 2.5)


def test_masked_whiten_takes_statistics_over_the_mask_only():
    x = torch.tensor([[1.0, 2.0, 1000.0], [3.0, 4.0, float("nan")]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    got = whiten(x, mask)
    torch.testing.assert_close(got[mask.bool()], whiten(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)))


@FAST
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=30), st.booleans())
def test_whiten_gives_zero_mean_unit_std(values, shift_mean):
    x = torch.tensor(values, dtype=torch.float64)
    got = whiten(x, shift_mean=shift_mean)
    spread = x.std(unbiased=False).item()
    mean_after = x.mean().item() if not shift_mean else 0.0
    # equal values leave rounding-sized deviations (~1e-14) that eps (1e-8) scales up to ~1e-6
    assert got.mean().item() == pytest.approx(mean_after, abs=1e-5)
    if spread > 1e-3:
        assert got.std(unbiased=False).item() == pytest.approx(1.0, rel=1e-5)


# ---------------------------------------------------------------- group advantages


REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # two groups of four


def test_group_advantages_hand_worked_with_unbiased_group_std():
    # group 1: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.5773503 -> A = +-0.8660254
    # group 2: all equal -> std 0 -> A = 0 / (0 + eps) = 0
    expected = torch.tensor([1.0, -1.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0]) * 0.8660254
    torch.testing.assert_close(group_advantages(REWARDS, 4, eps=1e-12), expected)


def test_group_advantages_without_scaling_only_centre_dr_grpo():
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(REWARDS, 4, scale="none"), expected)


def test_group_advantages_batch_scale_divides_by_whole_batch_std():
    # batch mean 0.75, squared deviations 2*0.5625 + 6*0.0625 = 1.5, unbiased var 1.5/7, std 0.4629100
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]) / 0.4629100
    torch.testing.assert_close(group_advantages(REWARDS, 4, scale="batch", eps=0.0), expected)


@FAST
@given(st.integers(1, 5), st.integers(2, 6), st.data())
def test_group_advantages_match_slow_reference(num_groups, group_size, data):
    flat = data.draw(st.lists(st.floats(-10, 10), min_size=num_groups * group_size,
                              max_size=num_groups * group_size))
    expected = []
    for g in range(num_groups):
        group = flat[g * group_size : (g + 1) * group_size]
        mean = sum(group) / group_size
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (group_size - 1))
        expected += [(r - mean) / (std + 1e-6) for r in group]
    got = group_advantages(torch.tensor(flat, dtype=torch.float64), group_size)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_group_advantages_rejects_group_size_of_one():
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(torch.ones(4), 1)


def test_group_advantages_rejects_batch_not_a_multiple_of_group_size():
    with pytest.raises(ValueError, match="multiple of group_size=4"):
        group_advantages(torch.ones(6), 4)


def test_group_advantages_rejects_unknown_scale():
    with pytest.raises(ValueError, match="valid scales: group, batch, none"):
        group_advantages(torch.ones(4), 2, scale="global")


def test_group_reward_std_marks_groups_with_nothing_to_learn():
    std = group_reward_std(REWARDS, 4)
    torch.testing.assert_close(std, torch.tensor([math.sqrt(1 / 3), 0.0]))
    assert (std > 0).tolist() == [True, False]


def test_group_advantages_accept_integer_rewards():
    got = group_advantages(torch.tensor([1, 0, 1, 1]), 2, scale="none")
    torch.testing.assert_close(got, torch.tensor([0.5, -0.5, 0.0, 0.0]))
