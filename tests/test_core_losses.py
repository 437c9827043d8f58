"""Losses: KL estimators, PPO surrogates, value loss, entropy, masking and aggregation."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from r1lab.core import (
    AGGREGATION_MODES,
    adapt_kl_coef,
    aggregate_loss,
    categorical_entropy,
    clipped_surrogate,
    explained_variance,
    kl_estimate,
    kl_k1,
    kl_k2,
    kl_k3,
    kl_penalty_surrogate,
    masked_mean,
    masked_sum,
    value_loss,
)

FAST = settings(max_examples=40, deadline=None)
LOG_RATIOS = st.floats(-8, 8, allow_nan=False)


# ---------------------------------------------------------------- KL estimators


def sampled_log_probs(policy, reference, samples, seed=0):
    """log pi(x) and log pi_ref(x) of `samples` tokens drawn from pi, and the exact KL(pi || pi_ref)."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.multinomial(policy, samples, replacement=True, generator=generator)
    exact = (policy * (policy.log() - reference.log())).sum().item()
    return policy.log()[tokens], reference.log()[tokens], exact


def assert_unbiased(estimates, exact):
    standard_error = estimates.std().item() / math.sqrt(estimates.numel())
    assert abs(estimates.mean().item() - exact) < 5 * standard_error


POLICY = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
FAR_REFERENCE = torch.tensor([0.1, 0.2, 0.2, 0.2, 0.3], dtype=torch.float64)  # KL(pi || ref) ~ 0.56


def test_k1_is_an_unbiased_estimate_of_kl():
    logp, ref_logp, exact = sampled_log_probs(POLICY, FAR_REFERENCE, 200_000)
    assert_unbiased(kl_k1(logp, ref_logp), exact)


def test_k3_is_an_unbiased_estimate_of_kl():
    logp, ref_logp, exact = sampled_log_probs(POLICY, FAR_REFERENCE, 200_000)
    estimates = kl_k3(logp, ref_logp)
    assert_unbiased(estimates, exact)
    # the check has power: the sign-swapped form exp(-d) + d - 1 averages E[pi/ref] - 1 - KL ~ 1.27
    assert abs(kl_k3(ref_logp, logp).mean().item() - exact) > 0.5


def test_k3_has_lower_variance_than_k1_for_close_distributions():
    near = torch.tensor([0.45, 0.22, 0.15, 0.11, 0.07], dtype=torch.float64)
    logp, ref_logp, _ = sampled_log_probs(POLICY, near, 50_000)
    assert kl_k3(logp, ref_logp).var() < 0.1 * kl_k1(logp, ref_logp).var()


def test_k2_is_close_to_kl_when_kl_is_small():
    near = torch.tensor([0.45, 0.22, 0.15, 0.11, 0.07], dtype=torch.float64)  # KL ~ 0.01
    logp, ref_logp, exact = sampled_log_probs(POLICY, near, 200_000)
    assert kl_k2(logp, ref_logp).mean().item() == pytest.approx(exact, rel=0.1)


def test_kl_estimators_hand_worked():
    # pi(x) = 0.5, pi_ref(x) = 0.25: d = log(0.25 / 0.5) = -log 2
    logp, ref_logp = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    torch.testing.assert_close(kl_k1(logp, ref_logp), torch.tensor([math.log(2)]))
    torch.testing.assert_close(kl_k2(logp, ref_logp), torch.tensor([0.5 * math.log(2) ** 2]))
    # k3 = 0.5 - (-log 2) - 1 = log 2 - 0.5 = 0.1931472
    torch.testing.assert_close(kl_k3(logp, ref_logp), torch.tensor([math.log(2) - 0.5]))


@FAST
@given(LOG_RATIOS, LOG_RATIOS)
def test_k3_is_never_negative_and_zero_only_when_equal(logp, ref_logp):
    value = kl_k3(torch.tensor(logp, dtype=torch.float64), torch.tensor(ref_logp, dtype=torch.float64)).item()
    assert value >= 0.0
    expected = math.exp(ref_logp - logp) - (ref_logp - logp) - 1
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_kl_estimate_dispatches_by_name_and_rejects_unknown():
    logp, ref_logp = torch.randn(4), torch.randn(4)
    for kind, estimator in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3)):
        torch.testing.assert_close(kl_estimate(logp, ref_logp, kind), estimator(logp, ref_logp))
    with pytest.raises(ValueError, match="valid estimators: k1, k2, k3"):
        kl_estimate(logp, ref_logp, "k4")


# ---------------------------------------------------------------- clipped surrogate


def surrogate_at(ratio, advantage, clip_low=0.2, clip_high=None):
    logp = torch.tensor([math.log(ratio)], dtype=torch.float64)
    return clipped_surrogate(logp, torch.zeros(1, dtype=torch.float64),
                             torch.tensor([advantage], dtype=torch.float64), clip_low, clip_high)


@pytest.mark.parametrize(
    ("ratio", "advantage", "loss", "clipped"),
    [
        (1.5, 1.0, -1.2, True),  # -min(1.5, 1.2): pushed past 1 + eps toward a good action
        (1.5, -1.0, 1.5, False),  # -min(-1.5, -1.2): a bad action made likelier stays unclipped
        (0.5, -1.0, 0.8, True),  # -min(-0.5, -0.8): pushed below 1 - eps away from a bad action
        (0.5, 1.0, -0.5, False),  # -min(0.5, 0.8): a good action made rarer stays unclipped
        (1.1, 2.0, -2.2, False),  # inside the trust region: -ratio * A
    ],
)
def test_clipped_surrogate_hand_worked(ratio, advantage, loss, clipped):
    terms = surrogate_at(ratio, advantage)
    assert terms.loss.item() == pytest.approx(loss)
    assert terms.ratio.item() == pytest.approx(ratio)
    assert terms.clipped.item() is clipped


def test_clip_higher_allows_larger_ratio_for_positive_advantage():
    assert surrogate_at(1.25, 1.0, clip_low=0.2).loss.item() == pytest.approx(-1.2)
    dapo = surrogate_at(1.25, 1.0, clip_low=0.2, clip_high=0.28)
    assert dapo.loss.item() == pytest.approx(-1.25) and not dapo.clipped.item()
    # the lower bound is still clip_low
    assert surrogate_at(0.7, -1.0, clip_low=0.2, clip_high=0.28).loss.item() == pytest.approx(0.8)


def test_clipped_branch_gives_zero_gradient():
    logp = torch.log(torch.tensor([1.5, 1.5, 0.5, 0.5], dtype=torch.float64)).requires_grad_()
    advantages = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    terms = clipped_surrogate(logp, torch.zeros(4, dtype=torch.float64), advantages, 0.2)
    terms.loss.sum().backward()
    assert terms.clipped.tolist() == [True, False, True, False]
    assert logp.grad[terms.clipped].abs().max().item() == 0.0
    # unclipped: d(-ratio * A)/d logp = -ratio * A
    torch.testing.assert_close(logp.grad[~terms.clipped], torch.tensor([1.5, -0.5], dtype=torch.float64))


def test_surrogate_gradient_at_ratio_one_is_the_policy_gradient():
    torch.manual_seed(0)
    logits = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    actions = torch.randint(0, 4, (6,))
    advantages = torch.randn(6, dtype=torch.float64)
    logp = torch.log_softmax(logits, -1).gather(1, actions[:, None]).squeeze(1)
    clipped_surrogate(logp, logp.detach(), advantages, 0.2).loss.sum().backward()
    surrogate_grad = logits.grad.clone()
    logits.grad = None
    logp = torch.log_softmax(logits, -1).gather(1, actions[:, None]).squeeze(1)
    (-(advantages * logp)).sum().backward()  # REINFORCE: -A * log pi
    torch.testing.assert_close(surrogate_grad, logits.grad)


def test_sequence_advantages_broadcast_over_tokens():
    logp = torch.randn(3, 5, dtype=torch.float64)
    old_logp = logp + 0.3 * torch.randn(3, 5, dtype=torch.float64)
    advantages = torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    terms = clipped_surrogate(logp, old_logp, advantages, 0.2)
    assert terms.loss.shape == terms.ratio.shape == terms.clipped.shape == (3, 5)
    per_token = clipped_surrogate(logp, old_logp, advantages.expand(3, 5), 0.2)
    torch.testing.assert_close(terms.loss, per_token.loss)


@FAST
@given(st.lists(st.tuples(LOG_RATIOS, st.floats(-5, 5)), min_size=1, max_size=20),
       st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_clipped_surrogate_matches_slow_reference(pairs, clip_low, clip_high):
    log_ratios = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    advantages = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    terms = clipped_surrogate(log_ratios, torch.zeros_like(log_ratios), advantages, clip_low, clip_high)
    for i, (log_ratio, advantage) in enumerate(pairs):
        ratio = math.exp(log_ratio)
        bounded = min(max(ratio, 1 - clip_low), 1 + clip_high)
        assert terms.loss[i].item() == pytest.approx(-min(ratio * advantage, bounded * advantage), rel=1e-9, abs=1e-9)
        assert terms.clipped[i].item() == (bounded * advantage < ratio * advantage)


# ---------------------------------------------------------------- KL-penalty surrogate


def test_kl_penalty_surrogate_hand_worked():
    # ratio 1.5, A 2, kl 0.1, beta 0.5: -(1.5 * 2) + 0.5 * 0.1 = -2.95
    loss = kl_penalty_surrogate(torch.tensor([math.log(1.5)]), torch.zeros(1), torch.tensor([2.0]),
                                torch.tensor([0.1]), 0.5)
    assert loss.item() == pytest.approx(-2.95)


@pytest.mark.parametrize(("measured", "new_beta"), [(0.02, 2.0), (0.005, 0.5), (0.012, 1.0), (0.008, 1.0)])
def test_adapt_kl_coef_follows_the_ppo_paper(measured, new_beta):
    # target 0.01, tolerance 1.5: double above 0.015, halve below 0.00667, keep between
    assert adapt_kl_coef(1.0, measured, 0.01) == pytest.approx(new_beta)


def test_adapt_kl_coef_accepts_a_tensor_measurement():
    assert adapt_kl_coef(0.3, torch.tensor(1.0), 0.01, factor=3.0) == pytest.approx(0.9)


# ---------------------------------------------------------------- value loss


def test_value_loss_hand_worked():
    values, returns, old = torch.tensor([3.0, 1.2]), torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])
    torch.testing.assert_close(value_loss(values, returns), torch.tensor([2.0, 1.62]))  # 0.5*4, 0.5*3.24
    # clip 0.5: V 3 -> 2.5, (2.5-1)^2 = 2.25 < 4 keeps 4;  clip 0.1: V 1.2 -> 1.1, (1.1-3)^2 = 3.61 > 3.24
    assert value_loss(values[:1], returns[:1], old[:1], clip=0.5).item() == pytest.approx(2.0)
    assert value_loss(values[1:], returns[1:], old[1:], clip=0.1).item() == pytest.approx(1.805)


def test_clipped_value_loss_gives_no_gradient_when_the_clipped_error_binds():
    values = torch.tensor([1.2], requires_grad=True)
    value_loss(values, torch.tensor([3.0]), torch.tensor([1.0]), clip=0.1).sum().backward()
    assert values.grad.item() == 0.0


def test_value_clipping_needs_old_values():
    with pytest.raises(ValueError, match="old_values"):
        value_loss(torch.zeros(2), torch.zeros(2), clip=0.2)


# ---------------------------------------------------------------- entropy


def test_categorical_entropy_hand_worked():
    # uniform over 4: log 4; two of four masked with -inf: uniform over 2, log 2
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [5.0, 5.0, -math.inf, -math.inf]])
    torch.testing.assert_close(categorical_entropy(logits), torch.tensor([math.log(4), math.log(2)]))


def test_categorical_entropy_with_masked_actions_has_finite_gradient():
    logits = torch.tensor([[1.0, 2.0, -math.inf], [-math.inf, 0.5, 3.0]], requires_grad=True)
    categorical_entropy(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 2].item() == 0.0


def test_categorical_entropy_is_stable_for_huge_logits():
    logits = torch.tensor([1e4, 1e4 - 1.0, -1e4])
    expected = torch.distributions.Categorical(logits=torch.tensor([0.0, -1.0, -2e4])).entropy()
    torch.testing.assert_close(categorical_entropy(logits), expected)


@FAST
@given(st.lists(st.floats(-20, 20), min_size=1, max_size=8))
def test_categorical_entropy_matches_slow_reference(logits):
    peak = max(logits)
    weights = [math.exp(x - peak) for x in logits]
    probs = [w / sum(weights) for w in weights]
    expected = -sum(p * math.log(p) for p in probs if p > 0)
    got = categorical_entropy(torch.tensor(logits, dtype=torch.float64)).item()
    assert got == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- masking and aggregation

LOSS = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])


def test_masked_sum_and_mean_hand_worked():
    x = torch.tensor([[1.0, 2.0, float("nan")], [3.0, float("inf"), 5.0]])
    mask = torch.tensor([[True, True, False], [True, False, True]])
    assert masked_sum(x, mask).item() == 11.0  # the NaN and inf of padding never leak in
    assert masked_mean(x, mask).item() == pytest.approx(11.0 / 4)
    torch.testing.assert_close(masked_mean(x, mask, dim=1), torch.tensor([1.5, 4.0]))
    torch.testing.assert_close(masked_sum(x, mask, dim=0), torch.tensor([4.0, 2.0, 5.0]))


def test_masked_mean_of_an_empty_mask_is_zero():
    assert masked_mean(torch.ones(3), torch.zeros(3)).item() == 0.0


def test_aggregate_loss_hand_worked():
    # sequence 1: tokens 1, 2, 3 (sum 6, mean 2); sequence 2: token 4 (sum 4, mean 4)
    assert aggregate_loss(LOSS, MASK, "sequence_mean").item() == pytest.approx((2 + 4) / 2)
    assert aggregate_loss(LOSS, MASK, "token_mean").item() == pytest.approx(10 / 4)
    assert aggregate_loss(LOSS, MASK, "token_mean", num_tokens=8).item() == pytest.approx(10 / 8)
    assert aggregate_loss(LOSS, MASK, "sequence_sum_over_max_length", max_length=4).item() == pytest.approx(
        (6 / 4 + 4 / 4) / 2)


def test_token_mean_over_micro_batches_with_global_count_equals_whole_batch():
    torch.manual_seed(0)
    loss, mask = torch.randn(6, 5), torch.rand(6, 5) > 0.3
    whole = aggregate_loss(loss, mask, "token_mean")
    total_tokens = int(mask.sum())
    parts = sum(aggregate_loss(loss[i : i + 2], mask[i : i + 2], "token_mean", num_tokens=total_tokens)
                for i in range(0, 6, 2))
    torch.testing.assert_close(parts, whole)


def test_each_mode_weighs_tokens_as_its_formula_says():
    loss = LOSS.clone().requires_grad_()
    expected_weights = {  # d aggregate / d l_it on real tokens: [sequence of 3, sequence of 1]
        "sequence_mean": (1 / (2 * 3), 1 / (2 * 1)),  # long sequences get less weight per token
        "token_mean": (1 / 4, 1 / 4),
        "sequence_sum_over_max_length": (1 / (2 * 4), 1 / (2 * 4)),  # no length bias
    }
    for mode, (long_weight, short_weight) in expected_weights.items():
        loss.grad = None
        aggregate_loss(loss, MASK, mode, max_length=4).backward()
        assert loss.grad[0, :3].tolist() == pytest.approx([long_weight] * 3), mode
        assert loss.grad[1, 0].item() == pytest.approx(short_weight), mode
        assert loss.grad[MASK == 0].abs().sum().item() == 0.0, mode


def test_aggregate_loss_rejects_unknown_mode_naming_the_valid_ones():
    with pytest.raises(ValueError, match=", ".join(AGGREGATION_MODES)):
        aggregate_loss(LOSS, MASK, "seq-mean-token-sum")


def test_sequence_sum_over_max_length_requires_max_length():
    with pytest.raises(ValueError, match="max_length"):
        aggregate_loss(LOSS, MASK, "sequence_sum_over_max_length")


@FAST
@given(st.integers(1, 4), st.integers(1, 6), st.data())
def test_aggregate_loss_matches_slow_reference(batch, length, data):
    values = data.draw(st.lists(st.lists(st.floats(-5, 5), min_size=length, max_size=length),
                                min_size=batch, max_size=batch))
    flags = data.draw(st.lists(st.lists(st.booleans(), min_size=length, max_size=length),
                               min_size=batch, max_size=batch))
    loss, mask = torch.tensor(values, dtype=torch.float64), torch.tensor(flags)
    sums = [sum(v for v, m in zip(row, keep, strict=True) if m) for row, keep in zip(values, flags, strict=True)]
    counts = [sum(keep) for keep in flags]
    expected = {
        "sequence_mean": sum(s / c if c else 0.0 for s, c in zip(sums, counts, strict=True)) / batch,
        "token_mean": sum(sums) / max(sum(counts), 1),
        "sequence_sum_over_max_length": sum(s / 7 for s in sums) / batch,
    }
    for mode, value in expected.items():
        assert aggregate_loss(loss, mask, mode, max_length=7).item() == pytest.approx(value, abs=1e-9), mode


# ---------------------------------------------------------------- explained variance


def test_explained_variance_hand_worked():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target).item() == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 2.5), target).item() == pytest.approx(0.0)
    # residuals [0, 0, 1, 1]: variance 0.25; target variance 1.25 -> 1 - 0.25 / 1.25 = 0.8
    assert explained_variance(torch.tensor([1.0, 2.0, 2.0, 3.0]), target).item() == pytest.approx(0.8)


def test_explained_variance_is_nan_for_a_constant_target():
    assert math.isnan(explained_variance(torch.randn(5), torch.ones(5)).item())
