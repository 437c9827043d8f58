"""PPO with GAE (seed §3.3): several epochs of minibatch steps on a surrogate that keeps pi_theta
near the policy that collected the batch.

    J_clip(theta) = E[ min(ratio A, clip(ratio, 1 - eps, 1 + eps) A) ],   ratio = pi_theta(a|s) / pi_old(a|s)
    J_kl(theta)   = E[ ratio A - beta KL(pi_old || pi_theta) ]            (the seed's proximal form; beta adapted)
    loss          = -J + c_v * value_loss - c_H * entropy

Each iteration, in the five steps of docs/design.md:

    1 collect   N envs x T steps with the current policy (numpy actions, no torch on the hot path)
    2 score     the env's rewards; the rollout policy's log-probs, values, and V(s_{t+1})
    3 estimate  GAE(gamma, lambda): truncated episodes bootstrap from V(final observation)
    4 improve   `epochs` passes of shuffled minibatches: clipped (or penalised) surrogate, value loss
                (optionally clipped), entropy bonus, gradient-norm clipping, approximate-KL early stop
    5 record    metrics, progress bar, checkpoint

Every formula is a call into `r1lab.core`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from r1lab.core import (
    adapt_kl_coef,
    clipped_surrogate,
    explained_variance,
    gae,
    kl_k3,
    kl_penalty_surrogate,
    value_loss,
    whiten,
)
from r1lab.policy_gradient.config import PPOConfig
from r1lab.policy_gradient.job import Job
from r1lab.policy_gradient.policies import ActorCritic, FlatParameters, NumpyPolicy
from r1lab.policy_gradient.rollout import Rollout


class Batch(NamedTuple):
    """One iteration's transitions flattened to B = T * N rows; every field's first dimension is B."""

    obs: torch.Tensor  # (B, obs_size)
    actions: torch.Tensor  # (B,) or (B, action_dim)
    logp: torch.Tensor  # (B,) log pi_old(a|s)
    dist_params: torch.Tensor  # (B, P) pi_old's parameters, for KL(pi_old || pi_theta)
    values: torch.Tensor  # (B,) V_old(s), for value clipping
    advantages: torch.Tensor  # (B,)
    returns: torch.Tensor  # (B,) the critic's targets: advantages + values

    def take(self, index: torch.Tensor) -> Batch:
        return Batch(*(field[index] for field in self))


def train_ppo(config: PPOConfig, run_dir: str | Path, *, resume: bool = False,
              overwrite: bool = False, quiet: bool = False) -> dict:
    """Train, log and checkpoint one PPO run; returns the summary also written to RUN_DIR/summary.json."""
    job = Job("ppo", config, run_dir, resume=resume, overwrite=overwrite, quiet=quiet)
    policy = job.policy
    params = FlatParameters(policy.parameters())
    optimizer = torch.optim.Adam([params.vector], lr=config.lr, eps=config.adam_eps, fused=True)
    extra = job.restore({"optimizer": optimizer}) if resume else {}
    kl_beta = extra.get("kl_beta", config.kl_beta)

    with job.progress():
        for iteration in job.remaining_iterations():
            remaining = 1.0 - iteration / job.iterations  # linear annealing toward 0
            lr = config.lr * (remaining if config.anneal_lr else 1.0)
            optimizer.param_groups[0]["lr"] = lr
            clip_coef = config.clip_coef * (remaining if config.anneal_clip else 1.0)

            # 1. collect
            with job.timed("collect"):
                rollout = job.collector.collect(NumpyPolicy(policy), job.action_rng)

            # 2. score and 3. estimate
            with job.timed("estimate"):
                dist_params, logp, values, next_values = score(policy, rollout)
                advantages, returns = gae(rollout.rewards, values, next_values, rollout.terminated,
                                          rollout.episode_end, config.gamma, config.gae_lambda)
                batch = Batch(rollout.obs.flatten(0, 1), rollout.actions.flatten(0, 1), logp.flatten(),
                              dist_params.flatten(0, 1), values.flatten(), advantages.flatten(), returns.flatten())

            # 4. improve
            with job.timed("improve"):
                stats = improve(policy, params, optimizer, batch, config, clip_coef, kl_beta)
                if config.objective == "kl_penalty":
                    with torch.no_grad():
                        stats["kl"] = policy.kl(batch.dist_params, policy.policy(batch.obs)).mean().item()
                    kl_beta = adapt_kl_coef(kl_beta, stats["kl"], config.kl_target)

            # 5. record
            stats.update(entropy=policy.entropy(batch.dist_params).mean().item(),
                         explained_variance=explained_variance(batch.values, batch.returns).item(),
                         lr=lr, clip_coef=clip_coef, kl_beta=kl_beta)
            job.record(iteration, rollout, stats, {"optimizer": optimizer}, {"kl_beta": kl_beta})
    return job.finish()


@torch.no_grad()
def score(policy: ActorCritic, rollout: Rollout) -> tuple[torch.Tensor, ...]:
    """The rollout policy's parameters (T, N, P), log pi_old(a_t|s_t) (T, N), V(s_t) (T, N) and
    V(s_{t+1}) (T, N), in one batched pass (the rollout itself chose actions without torch)."""
    dist_params, values = policy(rollout.obs)
    return dist_params, policy.log_prob(dist_params, rollout.actions), values, policy.value(rollout.next_obs)


def improve(policy: ActorCritic, params: FlatParameters, optimizer: torch.optim.Optimizer, batch: Batch,
            config: PPOConfig, clip_coef: float, kl_beta: float) -> dict[str, float]:
    """`epochs` passes over the batch in shuffled minibatches; returns the losses and diagnostics,
    averaged over the minibatch steps taken (as Stable-Baselines3 reports them)."""
    whole_batch = config.minibatch_size >= batch.advantages.shape[0]
    if whole_batch and config.normalize_advantages:  # whitening each minibatch is whitening the batch, once
        batch = batch._replace(advantages=whiten(batch.advantages))
    steps: list[tuple[torch.Tensor, ...]] = []
    for minibatch in minibatches(batch, config.epochs, config.minibatch_size):
        dist_params, values = policy(minibatch.obs)
        logp = policy.log_prob(dist_params, minibatch.actions)
        # checked before the step, as Stable-Baselines3 does: the step that would move the policy
        # further once it is already past kl_stop is not taken
        if config.kl_stop is not None and kl_k3(minibatch.logp, logp.detach()).mean().item() > config.kl_stop:
            break
        advantages = minibatch.advantages
        if config.normalize_advantages and not whole_batch:
            advantages = whiten(advantages)  # per minibatch, as SB3 and CleanRL do

        if config.objective == "clip":
            policy_loss = clipped_surrogate(logp, minibatch.logp, advantages, clip_coef).loss.mean()
        else:
            kl = policy.kl(minibatch.dist_params, dist_params)
            policy_loss = kl_penalty_surrogate(logp, minibatch.logp, advantages, kl, kl_beta).mean()
        critic_loss = value_loss(values, minibatch.returns, minibatch.values, config.clip_value).mean()
        loss = policy_loss + config.vf_coef * critic_loss
        if config.ent_coef:
            loss = loss - config.ent_coef * policy.entropy(dist_params).mean()

        params.zero_grad()
        loss.backward()
        grad_norm = params.clip_grad_norm_(config.max_grad_norm)
        optimizer.step()

        # diagnostics are computed once, after the epochs, from what each step saw
        steps.append((policy_loss.detach(), critic_loss.detach(), grad_norm, logp.detach(), minibatch.logp,
                      advantages))
    return diagnostics(steps, clip_coef)


def minibatches(batch: Batch, epochs: int, minibatch_size: int):
    """`epochs` shuffled passes over the batch, `minibatch_size` rows at a time. A minibatch as large
    as the batch is the batch itself each epoch: with the loss a mean, its order cannot matter."""
    size = batch.advantages.shape[0]
    for _epoch in range(epochs):
        if minibatch_size >= size:
            yield batch
            continue
        order = torch.randperm(size)
        for start in range(0, size, minibatch_size):
            yield batch.take(order[start : start + minibatch_size])


@torch.no_grad()
def diagnostics(steps: list[tuple[torch.Tensor, ...]], clip_coef: float) -> dict[str, float]:
    """Losses and gradient norm averaged over the minibatch steps; over every sample of every step,
    the approximate KL(pi_old || pi) (k3: E[r - 1 - log r], r = pi / pi_old, on pi_old's samples) and
    the clip fraction (where the clipped branch bound, so the sample gave no gradient)."""
    policy_loss, critic_loss, grad_norm, logp, old_logp, advantages = zip(*steps)
    logp, old_logp, advantages = torch.cat(logp), torch.cat(old_logp), torch.cat(advantages)
    return {"policy_loss": torch.stack(policy_loss).mean().item(), "value_loss": torch.stack(critic_loss).mean().item(),
            "grad_norm": torch.stack(grad_norm).mean().item(), "approx_kl": kl_k3(old_logp, logp).mean().item(),
            "clip_fraction": clipped_surrogate(logp, old_logp, advantages, clip_coef).clipped.float().mean().item(),
            "minibatch_steps": len(steps)}
