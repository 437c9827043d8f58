"""The critic fitted by regression, as REINFORCE's baseline and TRPO's value function do it.

    min_phi  E[ 0.5 * (V_phi(s_t) - R_t)^2 ]   over `epochs` passes of shuffled minibatches (Adam)

PPO instead adds the same `value_loss` to its surrogate and takes one joint step per minibatch.
"""

from __future__ import annotations

import torch

from r1lab.core import value_loss
from r1lab.policy_gradient.policies import ActorCritic, FlatParameters


def fit_critic(policy: ActorCritic, critic: FlatParameters, optimizer: torch.optim.Optimizer, obs: torch.Tensor,
               targets: torch.Tensor, epochs: int, minibatch_size: int) -> float:
    """Regress V(obs) on `targets`; obs (B, obs_size), targets (B,). Returns the mean loss of the last epoch."""
    size = targets.shape[0]
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(size)
        for start in range(0, size, minibatch_size):
            index = order[start : start + minibatch_size]
            loss = value_loss(policy.value(obs[index]), targets[index]).mean()
            critic.zero_grad()
            loss.backward()
            optimizer.step()
            if epoch == epochs - 1:
                losses.append(loss.detach())
    return torch.stack(losses).mean().item()
