"""TRPO (seed §3.2): the largest step on the importance-sampled surrogate that stays in a KL trust region.

    maximise_theta  L(theta) = E[ pi_theta(a|s) / pi_old(a|s) * A(s, a) ]
    subject to      E[ KL(pi_old(.|s) || pi_theta(.|s)) ] <= delta

Linearise L (gradient g) and take the KL to second order (its Hessian F, the Fisher matrix): the
step is s = sqrt(2 delta / x^T F x) * x with x = F^-1 g, found by conjugate gradient from
Fisher-vector products F v = grad (grad KL . v) + damping * v, never forming F. A backtracking line
search then shrinks s until the true KL is within delta and L truly improves. The critic is fitted
by regression on the GAE returns.

Each iteration: 1 collect N envs x T steps; 2 score: rewards, pi_old's log-probs and parameters,
V(s_t), V(s_{t+1}); 3 estimate GAE(gamma, lambda); 4 improve: the trust-region step on the actor,
then the critic's regression; 5 record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from r1lab.core import (
    backtracking_line_search,
    conjugate_gradient,
    explained_variance,
    gae,
    importance_sampled_surrogate,
    whiten,
)
from r1lab.policy_gradient.config import TRPOConfig
from r1lab.policy_gradient.critic import fit_critic
from r1lab.policy_gradient.job import Job
from r1lab.policy_gradient.policies import ActorCritic, FlatParameters, NumpyPolicy


def train_trpo(config: TRPOConfig, run_dir: str | Path, *, resume: bool = False,
               overwrite: bool = False, quiet: bool = False) -> dict:
    """Train, log and checkpoint one TRPO run; returns the summary also written to RUN_DIR/summary.json."""
    job = Job("trpo", config, run_dir, resume=resume, overwrite=overwrite, quiet=quiet)
    policy = job.policy
    actor, critic = FlatParameters(policy.actor_parameters()), FlatParameters(policy.critic_parameters())
    critic_optimizer = torch.optim.Adam([critic.vector], lr=config.critic_lr, fused=True)
    if resume:
        job.restore({"critic": critic_optimizer})

    with job.progress():
        for iteration in job.remaining_iterations():
            # 1. collect
            with job.timed("collect"):
                rollout = job.collector.collect(NumpyPolicy(policy), job.action_rng)

            # 2. score: pi_old and the critic on the batch
            with job.timed("estimate"):
                with torch.no_grad():
                    old_params, values = policy(rollout.obs)
                    old_logp = policy.log_prob(old_params, rollout.actions)
                    next_values = policy.value(rollout.next_obs)
                # 3. estimate: GAE
                advantages, returns = gae(rollout.rewards, values, next_values, rollout.terminated,
                                          rollout.episode_end, config.gamma, config.gae_lambda)
                if config.normalize_advantages:
                    advantages = whiten(advantages)
                obs, actions = rollout.obs.flatten(0, 1), rollout.actions.flatten(0, 1)

            # 4. improve: the trust-region step on the actor, then the critic's regression
            with job.timed("improve"):
                stats = trust_region_step(policy, actor, obs, actions, old_logp.flatten(), old_params.flatten(0, 1),
                                          advantages.flatten(), config)
                stats["value_loss"] = fit_critic(policy, critic, critic_optimizer, obs, returns.flatten(),
                                                 config.critic_epochs, config.critic_minibatch_size)

            # 5. record
            stats.update(entropy=policy.entropy(old_params).mean().item(),
                         explained_variance=explained_variance(values, returns).item())
            job.record(iteration, rollout, stats, {"critic": critic_optimizer})
    return job.finish()


def trust_region_step(policy: ActorCritic, actor: FlatParameters, obs: torch.Tensor, actions: torch.Tensor,
                      old_logp: torch.Tensor, old_params: torch.Tensor, advantages: torch.Tensor,
                      config: TRPOConfig) -> dict[str, float]:
    """Move the actor by the natural-gradient step that the line search accepts; B = batch rows.

    obs (B, obs_size), actions (B, ...), old_logp (B,), old_params (B, P) pi_old's parameters,
    advantages (B,). Returns the surrogate's gain, the KL reached, the step fraction kept and
    whether a step was taken.
    """
    params = actor.parameters

    def surrogate_loss() -> torch.Tensor:  # -L(theta)
        logp = policy.log_prob(policy.policy(obs), actions)
        return importance_sampled_surrogate(logp, old_logp, advantages).mean()

    def mean_kl() -> torch.Tensor:
        return policy.kl(old_params, policy.policy(obs)).mean()

    loss = surrogate_loss()
    gradient = -_flat(torch.autograd.grad(loss, params))  # g = grad L at theta_old
    fisher_vector_product = fisher_vector_product_fn(policy, params, obs, old_params, config.cg_damping)
    direction = conjugate_gradient(fisher_vector_product, gradient, config.cg_iterations)  # x = F^-1 g
    curvature = (direction @ fisher_vector_product(direction)).item()  # x^T F x
    full_step = math.sqrt(2.0 * config.max_kl / max(curvature, 1e-12)) * direction
    start, old_loss = actor.get(), loss.item()

    @torch.no_grad()
    def evaluate(candidate: torch.Tensor) -> tuple[float, float]:
        actor.set(candidate)
        return old_loss - surrogate_loss().item(), mean_kl().item()  # (improvement of L, KL)

    result = backtracking_line_search(evaluate, start, full_step, config.max_kl,
                                      expected_improvement=(gradient @ full_step).item(),
                                      max_backtracks=config.line_search_steps, shrink=config.line_search_shrink,
                                      accept_ratio=config.accept_ratio)
    actor.set(result.x)  # the accepted point, or theta_old when no step passed both tests
    return {"policy_loss": old_loss - result.improvement, "surrogate_gain": result.improvement,
            "kl": result.constraint, "step_fraction": result.step_fraction, "step_accepted": float(result.accepted)}


def fisher_vector_product_fn(policy: ActorCritic, params: list[torch.nn.Parameter], obs: torch.Tensor,
                             old_params: torch.Tensor, damping: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> (F + damping I) v, with F the Hessian of mean KL(pi_old || pi_theta) at theta = theta_old.

    Two backward passes, never F itself: the KL's gradient is taken once with create_graph=True,
    and each product differentiates (grad KL . v). At theta_old the KL's Hessian is the Fisher
    information matrix E[grad log pi grad log pi^T]. v and the result: (n,), n = sum of params' sizes.
    """
    kl = policy.kl(old_params, policy.policy(obs)).mean()
    kl_gradient = _flat(torch.autograd.grad(kl, params, create_graph=True))

    def product(vector: torch.Tensor) -> torch.Tensor:
        return _flat(torch.autograd.grad(kl_gradient @ vector, params, retain_graph=True)) + damping * vector

    return product


def _flat(tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])
