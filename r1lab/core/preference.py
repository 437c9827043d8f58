"""Learning from preferences: the reward model's loss, and RLHF-PPO's per-token reward, GAE and KL control.

    reward model   L = -log sigmoid(r_chosen - r_rejected - margin) + c * mean((r_chosen + r_rejected)^2)
    RLHF reward    r_t = -beta * KL_t  at every real token,  + score  at each sequence's last real token
    advantages     token-level GAE with the critic's values (`r1lab.core.gae`, the one PPO on CartPole calls)
    KL control     beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_samples / horizon)   (Ziegler et al.)

Per-token tensors are (B, T): B sequences of T completion tokens, right-padded, with a 0/1 (or
bool) `mask` that is 1 on real tokens. Pure functions: no models, no state.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from r1lab.core.losses import kl_estimate
from r1lab.core.returns import gae

# ---------------------------------------------------------------- the reward model's loss


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor,
                       margin: torch.Tensor | None = None) -> torch.Tensor:
    """The Bradley-Terry negative log-likelihood of preferring `chosen`, per pair.

        P(chosen > rejected) = sigmoid(r_chosen - r_rejected)
        loss = -log sigmoid(r_chosen - r_rejected - margin)

    `margin` (Llama 2's, from a data column: how much better chosen is) asks for a larger gap on
    pairs rated far apart; None is 0. r_chosen, r_rejected, margin: (B,). Returns (B,); the
    trainer takes the mean. logsigmoid keeps it finite for gaps of any size.
    """
    gap = r_chosen - r_rejected
    if margin is not None:
        gap = gap - margin
    return -F.logsigmoid(gap)


def reward_centering(r_chosen: torch.Tensor, r_rejected: torch.Tensor, coef: float) -> torch.Tensor:
    """The auxiliary loss that keeps a reward model's scores centred on zero (Eisenstein et al. 2023).

        loss = coef * mean((r_chosen + r_rejected)^2)

    The Bradley-Terry loss only sees differences, so scores may drift as a whole; this pins
    their mean without touching the ranking. 0.01 is the usual coef. (B,), (B,) -> 0-dim.
    """
    return coef * ((r_chosen + r_rejected) ** 2).mean()


# ---------------------------------------------------------------- RLHF-PPO's reward and advantages


def last_token_mask(mask: torch.Tensor) -> torch.Tensor:
    """True at each row's last real token, (B, T) bool; a row without real tokens has none.

    mask: (B, T), 0/1 or bool. The last real token is where the reward model's score goes and
    where the episode (the completion) ends.
    """
    real = mask.to(torch.bool)
    width = real.shape[-1]
    last = width - 1 - real.flip(-1).int().argmax(-1)  # index of the rightmost real token
    positions = torch.arange(width, device=mask.device)
    return (positions == last.unsqueeze(-1)) & real.any(-1, keepdim=True)


class TokenRewards(NamedTuple):
    rewards: torch.Tensor  # (B, T): -beta * KL_t, plus the score at the last real token; 0 on padding
    kl: torch.Tensor  # (B, T): the per-token KL estimate KL_t; 0 on padding


def kl_penalised_token_rewards(
    score: torch.Tensor,
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
    estimator: str = "k1",
) -> TokenRewards:
    """RLHF-PPO's per-token reward (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022).

        KL_t = k(log pi(o_t), log pi_ref(o_t))          k1 = log pi - log pi_ref (default), or k2 / k3
        r_t  = -beta * KL_t + [t = last real token] * score

    The KL is a reward here, a value, not a loss term: k1 is the usual choice (unbiased; its sum
    over a sequence is the sequence's log-ratio), k3 (always >= 0) an option. The sum of r_t
    over a sequence is its KL-penalised return, score - beta * sum_t KL_t.
    score: (B,), the reward model's (normalised) score of each completion. logp, ref_logp: (B, T)
    log-probs of the sampled tokens under the policy that sampled them and under the frozen
    reference. mask: (B, T), 1 on real tokens. Returns TokenRewards(rewards, kl), each (B, T),
    zero wherever the mask is 0.
    """
    real = mask.to(logp.dtype)
    kl = kl_estimate(logp, ref_logp, estimator) * real
    rewards = -beta * kl + score.to(logp.dtype).unsqueeze(-1) * last_token_mask(mask).to(logp.dtype)
    return TokenRewards(rewards, kl)


def token_level_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over the tokens of each completion, by `r1lab.core.gae`.

        delta_t = r_t + gamma * V_{t+1} - V_t       (V_{t+1} = 0 after the last real token)
        A_t     = delta_t + gamma * lam * A_{t+1}   (the recursion stops at the last real token)

    A completion is one episode and its tokens are the time steps: the (B, T) tensors are
    passed to `gae` time-major, as (T, B), with `terminated = episode_end = 1` at each row's
    last real token, so padding after it never reaches the real tokens. V_t is the critic's
    value of the state before token t (prompt and the tokens before t). rewards, values, mask:
    (B, T). Returns (advantages, returns), each (B, T), zero on padding; returns = A + V are
    the critic's targets.
    """
    end = last_token_mask(mask)
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    advantages, returns = gae(rewards.T, values.T, next_values.T, end.T, end.T, gamma, lam, mask=mask.T)
    return advantages.T, returns.T


# ---------------------------------------------------------------- KL control


def adaptive_kl_controller(beta: float, measured_kl: float, target_kl: float, n_samples: int, horizon: int) -> float:
    """Ziegler et al.'s (2019) adaptive KL coefficient, updated after each batch of samples.

        error = clip(measured_kl / target_kl - 1, -0.2, 0.2)
        beta  = beta * (1 + error * n_samples / horizon)

    measured_kl: the batch's mean KL(pi || pi_ref) per sequence (summed over its tokens), in nats;
    target_kl: where to hold it (Ziegler et al.: 6); n_samples: sequences in the batch; horizon:
    samples over which beta may change by about e^0.2 (10,000). verl and OpenRLHF use the same
    update. It is the seed's "proximal" penalty form with a smooth schedule; PPO's own doubling
    rule is `adapt_kl_coef`.
    """
    error = min(max(float(measured_kl) / target_kl - 1.0, -0.2), 0.2)
    return beta * (1.0 + error * n_samples / horizon)
