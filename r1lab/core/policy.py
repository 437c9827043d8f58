"""Policy distributions and the policy-gradient surrogates of the seed's §3.1-3.2.

Log-probabilities, entropies and KL divergences of the two action distributions an MLP policy
uses (categorical over discrete actions; diagonal Gaussian over continuous ones), and the two
surrogates that PPO's clipped and penalised forms (losses.py) grew out of: REINFORCE's
log pi * Psi and TRPO's importance-weighted ratio * A. Pure functions of tensors, batched over
any leading dimensions; the action dimension is the last one.
"""

from __future__ import annotations

import math

import torch

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# ---------------------------------------------------------------- categorical (discrete actions)


def categorical_log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) = logits_a - logsumexp(logits). logits: (..., A); actions: (...) integer. Returns (...)."""
    return torch.log_softmax(logits, dim=-1).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_a p_a (log p_a - log q_a) between softmax(logits_p) and softmax(logits_q).

    TRPO and PPO's penalty take p = pi_old, q = pi_theta: the exact per-state KL, whose Hessian at
    theta = theta_old is the Fisher matrix. logits: (..., A); returns (...), >= 0.
    """
    log_p = torch.log_softmax(logits_p, dim=-1)
    log_q = torch.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


# ---------------------------------------------------------------- diagonal Gaussian (continuous actions)


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(a; mu, diag(sigma^2)) = sum_i [ -(a_i - mu_i)^2 / (2 sigma_i^2) - log sigma_i - log sqrt(2 pi) ].

    actions, mean: (..., D); log_std broadcasts against them (a state-independent (D,) vector, or
    (..., D)). Returns (...): the log-density of the whole action vector.
    """
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std).sum(dim=-1) - LOG_SQRT_2PI * actions.shape[-1]


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """H = sum_i [ log sigma_i + 0.5 * (1 + log 2 pi) ]. log_std: (..., D); returns (...).

    It does not depend on the mean: with a state-independent log-std every state has the same entropy.
    """
    return (log_std + 0.5 + LOG_SQRT_2PI).sum(dim=-1)


def gaussian_kl(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor,
                log_std_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) between diagonal Gaussians, summed over the action dimensions.

        KL = sum_i [ log(sigma_q,i / sigma_p,i) + (sigma_p,i^2 + (mu_p,i - mu_q,i)^2) / (2 sigma_q,i^2) - 1/2 ]

    All arguments broadcast to (..., D); returns (...), >= 0.
    """
    variance_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    mean_term = (mean_p - mean_q) ** 2 * torch.exp(-2.0 * log_std_q)
    return (log_std_q - log_std_p + 0.5 * (variance_ratio + mean_term) - 0.5).sum(dim=-1)


# ---------------------------------------------------------------- the surrogates of §3.1 and §3.2


def policy_gradient_loss(logp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """REINFORCE, per element: loss = -log pi(a_t|s_t) * Psi_t, to minimise.

    Its gradient is the seed's -grad log pi(a_t|s_t) R(tau) when Psi = R(tau) (`episode_returns`),
    and the lower-variance reward-to-go or advantage when Psi is `discounted_returns` or
    G_t - V(s_t). `weights` are constants: pass them detached. Any shape; returns the broadcast shape.
    """
    return -logp * weights


def importance_sampled_surrogate(logp: torch.Tensor, old_logp: torch.Tensor,
                                 advantages: torch.Tensor) -> torch.Tensor:
    """TRPO's surrogate, per element: loss = -(pi_theta(a|s) / pi_old(a|s)) * A, to minimise.

    ratio = exp(logp - old_logp) reweights actions sampled from pi_old to pi_theta (importance
    sampling); at theta = theta_old its gradient equals the policy gradient. TRPO maximises its
    mean subject to mean KL(pi_old || pi_theta) <= delta; PPO clips the ratio instead
    (`clipped_surrogate`). Any shape; returns the broadcast shape.
    """
    return -torch.exp(logp - old_logp) * advantages
