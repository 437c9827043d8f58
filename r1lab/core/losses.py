"""Losses and the terms they are made of: KL estimators, surrogates, value loss, entropy, aggregation.

Every loss here is to be minimised (a surrogate objective enters with a minus sign) and is
returned per element; `aggregate_loss` turns a (B, T) per-token loss into the scalar to
backpropagate.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

AGGREGATION_MODES = ("sequence_mean", "token_mean", "sequence_sum_over_max_length")


# ---------------------------------------------------------------- KL(pi || pi_ref) estimators
# Schulman, "Approximating KL divergence" (2020). logp and ref_logp are the log-probs, under pi and
# pi_ref, of tokens sampled from pi; averaging an estimator over such samples estimates
# KL(pi || pi_ref) = E_{x~pi}[log pi(x) - log pi_ref(x)].
#
# As a loss term (differentiated through logp, the samples held fixed) the three differ in what
# their gradient follows, which decides where each may go:
#   k1: grad = grad log pi(x); E_pi[grad log pi] = 0, so in a loss it does not regularise at all.
#       It belongs in the reward (RLHF-PPO's -beta * k1 per token), where it is a value, not a gradient.
#   k2: grad = (log pi - log pi_ref) grad log pi, whose expectation is grad KL(pi || pi_ref).
#   k3: grad = (1 - pi_ref/pi) grad log pi, whose expectation is grad KL(pi_ref || pi), the forward KL.


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = log pi(x) - log pi_ref(x). Unbiased, high variance, can be negative. Any shape.

    Its gradient has zero expectation under pi: use it as a per-token reward, never as a loss term."""
    return logp - ref_logp


def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = 0.5 * (log pi(x) - log pi_ref(x))^2. Biased (close for small KL), low variance, >= 0.

    As a loss term its gradient is, in expectation, that of KL(pi || pi_ref). Any shape."""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = pi_ref/pi - log(pi_ref/pi) - 1 = exp(d) - d - 1 with d = log pi_ref(x) - log pi(x).

    Unbiased for KL(pi || pi_ref) in value and always >= 0 (exp(d) >= 1 + d); the GRPO paper's
    KL term. As a loss term its gradient is, in expectation, that of the forward KL(pi_ref || pi).
    Any shape.
    """
    log_ratio = ref_logp - logp
    # expm1(d) - d keeps precision when pi and pi_ref agree closely (d ~ 0)
    return torch.expm1(log_ratio) - log_ratio


KL_ESTIMATORS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """The per-token KL(pi || pi_ref) estimator named `kind` ("k1", "k2" or "k3"). Any shape."""
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {kind!r}; valid estimators: {', '.join(KL_ESTIMATORS)}")
    return KL_ESTIMATORS[kind](logp, ref_logp)


# ---------------------------------------------------------------- policy surrogates


class SurrogateTerms(NamedTuple):
    loss: torch.Tensor  # per element, to minimise
    ratio: torch.Tensor  # pi / pi_old
    clipped: torch.Tensor  # bool: the clipped branch binds here, so the gradient is zero


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float | None = None,
) -> SurrogateTerms:
    """PPO's clipped surrogate, per element.

        ratio = exp(logp - old_logp)
        loss  = -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A)

    clip_high defaults to clip_low (PPO's symmetric epsilon); DAPO's clip-higher sets
    clip_high > clip_low so that unlikely tokens with A > 0 can gain more per update.
    logp, old_logp: any shape, e.g. (B, T); advantages broadcast against them, e.g. (B, 1) for
    one advantage per sequence. `clipped` marks where the clipped branch is strictly the smaller
    one: the ratio has left the trust region in the direction A rewards, and the element gives
    no gradient. Returns SurrogateTerms(loss, ratio, clipped), each of the broadcast shape.
    """
    if clip_high is None:
        clip_high = clip_low
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped_objective = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    loss = -torch.minimum(unclipped, clipped_objective)
    return SurrogateTerms(loss, ratio.expand_as(loss), (clipped_objective < unclipped).expand_as(loss))


def kl_penalty_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """PPO's adaptive-KL-penalty surrogate (the seed's "proximal" penalty form), per element.

        loss = -(ratio * A) + beta * kl,    ratio = exp(logp - old_logp)

    `kl` is the caller's per-element estimate of KL(pi_old || pi) (e.g. the exact categorical KL
    per state, or `kl_k1(old_logp, logp)` on actions sampled from pi_old), broadcastable to logp.
    Adapt beta between updates with `adapt_kl_coef`. Returns the broadcast shape.
    """
    ratio = torch.exp(logp - old_logp)
    return -(ratio * advantages) + beta * kl


def adapt_kl_coef(
    beta: float,
    measured_kl: float,
    target_kl: float,
    factor: float = 2.0,
    tolerance: float = 1.5,
) -> float:
    """The PPO paper's rule for the KL penalty's weight, applied after each policy update.

        beta * factor   if measured_kl > target_kl * tolerance   (moved too far: penalise more)
        beta / factor   if measured_kl < target_kl / tolerance   (barely moved: penalise less)
        beta            otherwise
    """
    measured_kl = float(measured_kl)
    if measured_kl > target_kl * tolerance:
        return beta * factor
    if measured_kl < target_kl / tolerance:
        return beta / factor
    return beta


# ---------------------------------------------------------------- critic and entropy


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor | None = None,
    clip: float | None = None,
) -> torch.Tensor:
    """The critic's squared error, per element, optionally with PPO's value clipping.

        loss = 0.5 * (V - R)^2
        clipped: 0.5 * max((V - R)^2, (V_old + clamp(V - V_old, -clip, clip) - R)^2)

    Clipping keeps the new value within `clip` of the old one unless that makes the error
    smaller (the pessimistic max). values, returns, old_values: same shape. Returns that shape.
    """
    squared_error = (values - returns) ** 2
    if clip is None:
        return 0.5 * squared_error
    if old_values is None:
        raise ValueError("value_loss: clip needs old_values, the critic's values at rollout time")
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * torch.maximum(squared_error, (clipped_values - returns) ** 2)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution softmax(logits) over the last dimension.

        H = -sum_a p_a log p_a,    log p = logits - logsumexp(logits)

    Stable for large logits, and -inf logits (masked actions) count as p = 0 without NaN in the
    value or the gradient. logits: (..., A); returns (...).
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    # 0 * log 0 = 0: replace -inf before the product, or its gradient is 0 * inf = NaN
    finite_log_probs = torch.where(torch.isfinite(log_probs), log_probs, torch.zeros_like(log_probs))
    return -(log_probs.exp() * finite_log_probs).sum(dim=-1)


# ---------------------------------------------------------------- masking and aggregation


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """sum_i m_i x_i over `dim` (all elements when None). mask: 0/1 or bool, x's shape.
    Masked-out elements never reach the result, even when they are NaN or inf (padding)."""
    weights = mask.to(x.dtype)
    masked = torch.where(weights != 0, x * weights, torch.zeros_like(x))
    return masked.sum() if dim is None else masked.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None, eps: float = 1e-8) -> torch.Tensor:
    """sum_i m_i x_i / sum_i m_i over `dim` (all elements when None); 0 where the mask is empty.
    mask: 0/1 or bool, x's shape."""
    weights = mask.to(x.dtype).expand_as(x)
    count = weights.sum() if dim is None else weights.sum(dim=dim)
    return masked_sum(x, weights, dim) / count.clamp(min=eps)


def aggregate_loss(
    loss: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    *,
    max_length: int | None = None,
    num_tokens: int | float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce a per-token loss (B, T) with its mask (B, T) to the scalar to backpropagate.

    sequence_mean                  1/B sum_i 1/|o_i| sum_t l_it      (the GRPO paper)
        each sequence's mean over its own tokens, then the mean over the B sequences; a
        sequence with no tokens counts as 0. Long sequences get less weight per token.
    token_mean                     sum_i sum_t l_it / N_tokens        (DAPO)
        every token weighs the same; N_tokens is this batch's mask sum, or `num_tokens`, the
        token count of the whole batch when the caller splits it into micro-batches and sums
        their gradients.
    sequence_sum_over_max_length   1/B sum_i sum_t l_it / max_length  (Dr. GRPO)
        a constant normaliser, so a token's weight does not depend on its sequence's length.

    Returns a 0-dim tensor.
    """
    if mode == "sequence_mean":
        return masked_mean(loss, mask, dim=-1).mean()
    if mode == "token_mean":
        total = masked_sum(loss, mask)
        count = mask.to(loss.dtype).sum() if num_tokens is None else num_tokens
        return total / torch.clamp(torch.as_tensor(count, dtype=loss.dtype, device=loss.device), min=1.0)
    if mode == "sequence_sum_over_max_length":
        if max_length is None:
            raise ValueError("aggregate_loss: mode 'sequence_sum_over_max_length' needs max_length")
        return (masked_sum(loss, mask, dim=-1) / max_length).mean()
    raise ValueError(f"unknown loss aggregation mode {mode!r}; valid modes: {', '.join(AGGREGATION_MODES)}")


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """How much of the target's variance the critic explains, as Stable-Baselines3 logs it.

        ev = 1 - Var[target - predicted] / Var[target]    (population variances; NaN if Var[target] = 0)

    1 is a perfect critic, 0 one no better than a constant, < 0 worse than one. Any shape,
    all elements pooled; returns a 0-dim tensor (no gradient).
    """
    predicted, target = predicted.detach(), target.detach()
    target_variance = target.var(unbiased=False)
    if target_variance == 0:
        return torch.tensor(float("nan"), dtype=target.dtype, device=target.device)
    return 1.0 - (target - predicted).var(unbiased=False) / target_variance
