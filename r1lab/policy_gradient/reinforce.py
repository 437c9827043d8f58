"""REINFORCE (seed §3.1): the policy gradient theorem, one gradient step per batch.

    grad J(theta) = E_tau[ sum_t grad log pi_theta(a_t|s_t) * Psi_t ]       theta <- theta + alpha grad J

with Psi_t one of
    R(tau)                     the seed's form: the whole episode's return, for every step of it
    G_t = sum_k gamma^k r_t+k  reward-to-go: an action is not credited with the rewards before it
    G_t - V(s_t)               reward-to-go minus a learned baseline (the critic, fitted by regression)
All three are unbiased; each one down the list has lower variance (`gradient_variance` measures it).

Each iteration: 1 collect N envs x T steps; 2 score: the env's rewards, and V(s) when there is a
baseline; 3 estimate Psi with `episode_returns`, `discounted_returns` or `gae` (lambda = 1, which
bootstraps a truncated episode from V of its final observation); 4 improve: one Adam step on
-log pi * Psi, then the critic's regression; 5 record.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from r1lab.core import (
    discounted_returns,
    episode_returns,
    explained_variance,
    gae,
    kl_k3,
    policy_gradient_loss,
    whiten,
)
from r1lab.policy_gradient.config import ReinforceConfig
from r1lab.policy_gradient.critic import fit_critic
from r1lab.policy_gradient.job import Job
from r1lab.policy_gradient.policies import ActorCritic, FlatParameters, NumpyPolicy
from r1lab.policy_gradient.rollout import Rollout, RolloutCollector


def train_reinforce(config: ReinforceConfig, run_dir: str | Path, *, resume: bool = False,
                    overwrite: bool = False, quiet: bool = False) -> dict:
    """Train, log and checkpoint one REINFORCE run; returns the summary also written to RUN_DIR/summary.json."""
    job = Job("reinforce", config, run_dir, resume=resume, overwrite=overwrite, quiet=quiet)
    policy = job.policy
    actor, critic = FlatParameters(policy.actor_parameters()), FlatParameters(policy.critic_parameters())
    actor_optimizer = torch.optim.Adam([actor.vector], lr=config.lr, fused=True)
    critic_optimizer = torch.optim.Adam([critic.vector], lr=config.critic_lr, fused=True)
    optimizers = {"actor": actor_optimizer, "critic": critic_optimizer}
    if resume:
        job.restore(optimizers)

    with job.progress():
        for iteration in job.remaining_iterations():
            # 1. collect
            with job.timed("collect"):
                rollout = job.collector.collect(NumpyPolicy(policy), job.action_rng)

            # 2. score: the env's rewards; the baseline's values when there is one
            with job.timed("estimate"):
                with torch.no_grad():
                    values, next_values = policy.value(rollout.obs), policy.value(rollout.next_obs)
                # 3. estimate: Psi_t, and the critic's regression target
                psi, targets = psi_weights(rollout, values, next_values, config)
                obs, actions = rollout.obs.flatten(0, 1), rollout.actions.flatten(0, 1)

            # 4. improve: one step along the policy gradient, then the baseline's regression
            with job.timed("improve"):
                stats = policy_gradient_step(policy, actor, actor_optimizer, obs, actions, psi.flatten(), config)
                if config.baseline:
                    stats["value_loss"] = fit_critic(policy, critic, critic_optimizer, obs, targets.flatten(),
                                                     config.critic_epochs, config.critic_minibatch_size)
                    stats["explained_variance"] = explained_variance(values, targets).item()

            # 5. record
            job.record(iteration, rollout, stats, optimizers)
    return job.finish({"psi": config.psi, "baseline": config.baseline})


def psi_weights(rollout: Rollout, values: torch.Tensor, next_values: torch.Tensor,
                config: ReinforceConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(Psi, critic targets), both (T, N): the weight of each grad log pi, and what V(s) regresses on.

    total_return    R(tau) of each step's episode (`episode_returns`); an episode cut by the
                    rollout's edge counts the part inside the rollout
    reward_to_go    G_t: with a baseline, `gae` with lambda = 1 (G_t bootstrapped from V where a
                    time limit or the rollout's edge cut the episode); without one,
                    `discounted_returns` (the cut tail counts as 0: nothing to bootstrap from)
    The baseline, when used, is subtracted: Psi = target - V(s_t).
    """
    if config.psi == "total_return":
        targets = episode_returns(rollout.rewards, rollout.episode_end, config.gamma)
    elif config.baseline:
        _, targets = gae(rollout.rewards, values, next_values, rollout.terminated, rollout.episode_end,
                         config.gamma, 1.0)
    else:
        targets = discounted_returns(rollout.rewards, rollout.episode_end, config.gamma)
    psi = targets - values if config.baseline else targets
    return (whiten(psi) if config.normalize_advantages else psi), targets


def policy_gradient_step(policy: ActorCritic, actor: FlatParameters, optimizer: torch.optim.Optimizer,
                         obs: torch.Tensor, actions: torch.Tensor, psi: torch.Tensor,
                         config: ReinforceConfig) -> dict[str, float]:
    """theta <- theta + alpha * grad mean_t[log pi(a_t|s_t) Psi_t] (Adam's alpha).

    Returns the loss, the gradient's norm, the rollout policy's entropy and how far the step moved
    the policy: the approximate KL(pi_old || pi_new) (k3 on the batch's actions).
    """
    dist_params = policy.policy(obs)
    logp = policy.log_prob(dist_params, actions)
    loss = policy_gradient_loss(logp, psi).mean()
    actor.zero_grad()
    loss.backward()
    grad_norm = torch.linalg.vector_norm(actor.gradient())
    if config.max_grad_norm is not None:
        actor.clip_grad_norm_(config.max_grad_norm)
    optimizer.step()
    with torch.no_grad():
        approx_kl = kl_k3(logp.detach(), policy.log_prob(policy.policy(obs), actions)).mean()
        entropy = policy.entropy(dist_params).mean()  # of the policy that collected the batch
    return {"policy_loss": loss.item(), "approx_kl": approx_kl.item(), "grad_norm": grad_norm.item(),
            "entropy": entropy.item()}


def gradient_variance(policy: ActorCritic, collector: RolloutCollector, rng: np.random.Generator,
                      config: ReinforceConfig, batches: int = 20) -> dict[str, float]:
    """How noisy each Psi makes the gradient estimate, measured at a fixed policy and critic.

    Draws `batches` independent rollouts; for each, computes the policy gradient (unwhitened Psi,
    so the scales compare) under Psi = R(tau), G_t and G_t - V(s_t). Returns, per Psi, the total
    variance sum_i Var[g_i] over the batches, and the same relative to |E[g]|^2 (noise per unit
    of signal). Leaves the policy's parameters and gradients as they were.
    """
    params = policy.actor_parameters()
    variants = {"total_return": ("total_return", False), "reward_to_go": ("reward_to_go", False),
                "reward_to_go_baseline": ("reward_to_go", True)}
    grads: dict[str, list[torch.Tensor]] = {name: [] for name in variants}
    actor = NumpyPolicy(policy)
    for _ in range(batches):
        rollout = collector.collect(actor, rng)
        with torch.no_grad():
            values, next_values = policy.value(rollout.obs), policy.value(rollout.next_obs)
        for name, (psi, baseline) in variants.items():
            variant = replace(config, psi=psi, baseline=baseline, normalize_advantages=False)
            weights, _ = psi_weights(rollout, values, next_values, variant)
            loss = policy_gradient_loss(policy.log_prob(policy.policy(rollout.obs), rollout.actions), weights).mean()
            grads[name].append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    result = {}
    for name, samples in grads.items():
        stacked = torch.stack(samples)
        total_variance = stacked.var(dim=0).sum().item()
        result[name] = total_variance
        result[f"{name}_relative"] = total_variance / stacked.mean(dim=0).pow(2).sum().item()
    return result
