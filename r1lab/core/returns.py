"""Returns and advantages: what each action is credited with.

Every function here is pure and batched. Rollout tensors are time-major, shape (T, N): T steps of
N parallel environments (or T tokens of N sequences). A reverse loop over T carries the
recursions; every step of it is vectorised over N.
"""

from __future__ import annotations

import torch

GROUP_SCALES = ("group", "batch", "none")


def _not(flags: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """1 - flags as a float tensor of `like`'s dtype; flags may be bool or 0/1 floats."""
    return 1.0 - flags.to(like.dtype)


def discounted_returns(
    rewards: torch.Tensor,
    episode_end: torch.Tensor,
    gamma: float,
    bootstrap: torch.Tensor | None = None,
) -> torch.Tensor:
    """Discounted reward-to-go.

        G_t = r_t + gamma * (1 - end_t) * G_{t+1},    G_T = bootstrap

    rewards, episode_end: (T, N); episode_end is 1 (or True) where the episode ended at step t,
    terminated or truncated. bootstrap: (N,), the value credited after the last step T-1 to
    environments whose episode is still running there (default 0: the rollout's unfinished tail
    counts only the rewards it saw). Returns G: (T, N).
    """
    not_end = _not(episode_end, rewards)
    running = torch.zeros_like(rewards[0]) if bootstrap is None else bootstrap.to(rewards.dtype)
    returns = torch.empty_like(rewards)
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * not_end[t] * running
        returns[t] = running
    return returns


def episode_returns(rewards: torch.Tensor, episode_end: torch.Tensor, gamma: float) -> torch.Tensor:
    """The seed's REINFORCE weight R(tau): every step is credited with its whole episode's return.

        R(tau) = sum_{k=s}^{e} gamma^(k - s) * r_k    for every step t in the episode [s, e]

    counted from the episode's first step s, not from t (so an action is also credited with the
    rewards before it: unbiased, but noisier than `discounted_returns`). An episode cut by the
    rollout's edge counts only the part inside the rollout. rewards, episode_end: (T, N);
    returns (T, N).
    """
    from_step = discounted_returns(rewards, episode_end, gamma)
    ended = episode_end.to(torch.bool)
    credited = torch.empty_like(rewards)
    episode_total = from_step[0]
    credited[0] = episode_total
    for t in range(1, rewards.shape[0]):
        # a new episode starts at t where the previous step ended one: its total is G_t
        episode_total = torch.where(ended[t - 1], from_step[t], episode_total)
        credited[t] = episode_total
    return credited


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    episode_end: torch.Tensor,
    gamma: float,
    lam: float,
    *,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016).

        delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - episode_end_t) * A_{t+1},    A_T = 0

    All tensors are time-major, shape (T, N). `next_values` holds V of the observation after
    step t, which for a truncated episode is the final observation, not the reset one: a
    truncated step (episode_end=1, terminated=0) bootstraps from it, a terminated step does not,
    and the advantage recursion stops at either. At t = T-1 of an unfinished episode,
    next_values[T-1] is V of the observation the rollout stopped at. lam=1 gives the Monte Carlo
    advantage G_t - V(s_t), lam=0 the one-step TD residual.

    Token-level use (RLHF-PPO): a (B, L) batch of B sequences is passed transposed, as (L, B)
    tensors (`rewards.T`, ...), and the outputs are transposed back. Set terminated and
    episode_end to 1 at each sequence's last real token; steps after it (right padding) then
    never reach the real tokens, so no mask is needed, and their outputs are simply to be masked
    out of the loss. With `mask` (T, N), 0 on padding, the outputs are zeroed there instead.

    Returns (advantages, returns), both (T, N), with returns = advantages + values (the
    critic's regression target, the TD(lambda) return).
    """
    deltas = rewards + gamma * next_values * _not(terminated, rewards) - values
    carry = gamma * lam * _not(episode_end, rewards)
    advantages = torch.empty_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in reversed(range(deltas.shape[0])):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    returns = advantages + values
    if mask is not None:
        keep = mask.to(torch.bool)
        advantages = torch.where(keep, advantages, torch.zeros_like(advantages))
        returns = torch.where(keep, returns, torch.zeros_like(returns))
    return advantages, returns


def whiten(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    shift_mean: bool = True,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalise to zero mean and unit standard deviation over all (masked) elements.

        whiten(x) = (x - mean(x)) / (std(x) + eps)          shift_mean=True
                  = (x - mean(x)) / (std(x) + eps) + mean(x)   shift_mean=False

    std is the population std (unbiased=False), masked or not:
    mean = sum(m x) / sum(m), var = sum(m (x - mean)^2) / sum(m). shift_mean=False only rescales
    (TRL/verl do this to RLHF rewards, whose sign carries meaning). x: any shape; mask: 0/1 or
    bool, same shape, selects the elements the statistics are taken over; every element is
    transformed with them. Returns x's shape.
    """
    if mask is None:
        mean = x.mean()
        std = x.std(unbiased=False)
    else:
        weights = mask.to(x.dtype)
        count = weights.sum()
        selected = torch.where(weights != 0, x, torch.zeros_like(x))
        mean = (selected * weights).sum() / count
        centred = torch.where(weights != 0, x - mean, torch.zeros_like(x))
        std = ((centred**2 * weights).sum() / count).sqrt()
    whitened = (x - mean) / (std + eps)
    return whitened if shift_mean else whitened + mean


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) -> (B / group_size, group_size), after checking the layout is one group per row."""
    if group_size < 2:
        raise ValueError(
            f"group_size must be >= 2, got {group_size}: a group-relative advantage compares "
            "completions of the same prompt, and a group of one has nothing to compare with"
        )
    if rewards.dim() != 1 or rewards.shape[0] % group_size != 0:
        raise ValueError(
            f"rewards must be a 1-D tensor whose length is a multiple of group_size={group_size} "
            f"(group by group: {group_size} consecutive completions of one prompt), got shape "
            f"{tuple(rewards.shape)}"
        )
    grouped = rewards.view(-1, group_size)
    return grouped if grouped.is_floating_point() else grouped.float()


def group_advantages(
    rewards: torch.Tensor,
    group_size: int,
    scale: str = "group",
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO's group-relative advantage: each completion against its siblings.

        A_i = (r_i - mean(r_group)) / (std + eps)

    with std the group's std (scale="group", the GRPO paper), the whole batch's std
    (scale="batch"), or no division at all (scale="none", Dr. GRPO: A_i = r_i - mean(r_group),
    no bias toward easy or hard prompts). Both stds are unbiased (Bessel-corrected, torch.std's
    default, as the paper's code and TRL use). A group whose rewards are all equal gets A = 0.

    rewards: (B,) with B = num_groups * group_size laid out group by group (G consecutive
    completions of one prompt). Returns (B,).
    """
    if scale not in GROUP_SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {', '.join(GROUP_SCALES)}")
    grouped = _groups(rewards, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (grouped.std() + eps)
    return centred.reshape(-1)


def group_reward_std(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Each group's reward std (unbiased), e.g. for the share of groups with nothing to learn.

        std_g = sqrt( sum_i (r_i - mean_g)^2 / (G - 1) )

    rewards: (B,) laid out group by group as in `group_advantages`. Returns (B / group_size,).
    A zero entry marks a group whose completions all scored the same: its advantages are all 0.
    """
    return _groups(rewards, group_size).std(dim=1)
