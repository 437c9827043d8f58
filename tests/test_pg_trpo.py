"""TRPO's pieces on a small policy: Fisher-vector products against the explicit Hessian, and a trust-region
step that respects delta and improves the surrogate (or leaves the policy where it was)."""

import torch
from gymnasium import spaces

from r1lab.core import importance_sampled_surrogate
from r1lab.policy_gradient import TRPOConfig
from r1lab.policy_gradient.policies import ActorCritic, FlatParameters
from r1lab.policy_gradient.trpo import fisher_vector_product_fn, trust_region_step


def small_problem(space, seed=0):
    torch.manual_seed(seed)
    policy = ActorCritic(3, space, hidden_sizes=[5])
    actor = FlatParameters(policy.actor_parameters())
    obs = torch.randn(64, 3)
    with torch.no_grad():
        old_params = policy.policy(obs)
        actions = policy.distribution.sample(old_params)
        old_logp = policy.log_prob(old_params, actions)
    return policy, actor, obs, actions, old_params, old_logp


def explicit_kl_hessian(policy, actor, obs, old_params):
    start = actor.get()

    names = {id(p): name for name, p in policy.named_parameters()}

    def mean_kl(vector):
        values, offset = {}, 0
        for p in actor.parameters:  # the flat vector's order
            values[names[id(p)]] = vector[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        out = torch.func.functional_call(policy, values, (obs,), strict=False)[0]
        return policy.kl(old_params, out).mean()

    return torch.autograd.functional.hessian(mean_kl, start)


def test_fisher_vector_products_match_the_explicit_kl_hessian():
    for space in (spaces.Discrete(3), spaces.Box(-1, 1, (2,))):
        policy, actor, obs, _, old_params, _ = small_problem(space)
        hessian = explicit_kl_hessian(policy, actor, obs, old_params)
        product = fisher_vector_product_fn(policy, actor.parameters, obs, old_params, damping=0.1)
        vector = torch.randn(actor.vector.numel())
        expected = hessian @ vector + 0.1 * vector
        torch.testing.assert_close(product(vector), expected, rtol=1e-4, atol=1e-5)
        assert torch.linalg.eigvalsh(hessian).min() > -1e-5  # a KL's Hessian at its minimum is PSD


def test_trust_region_step_stays_within_delta_and_improves_the_surrogate():
    for space in (spaces.Discrete(3), spaces.Box(-1, 1, (2,))):
        policy, actor, obs, actions, old_params, old_logp = small_problem(space, seed=1)
        advantages = torch.randn(64)
        config = TRPOConfig(max_kl=0.01, tensorboard=False)
        before = actor.get()
        stats = trust_region_step(policy, actor, obs, actions, old_logp, old_params, advantages, config)
        with torch.no_grad():
            params = policy.policy(obs)
            kl = policy.kl(old_params, params).mean().item()
            gain = -importance_sampled_surrogate(policy.log_prob(params, actions), old_logp, advantages).mean().item() \
                - advantages.mean().item()  # L(theta) - L(theta_old), where L(theta_old) = mean A
        assert stats["step_accepted"] == 1.0 and not torch.equal(actor.get(), before)
        assert 0 < kl <= 0.01 and abs(kl - stats["kl"]) < 1e-6
        assert gain > 0 and abs(gain - stats["surrogate_gain"]) < 1e-5


def test_a_step_that_cannot_improve_is_rejected_and_leaves_the_policy_unchanged():
    policy, actor, obs, actions, old_params, old_logp = small_problem(spaces.Discrete(3), seed=2)
    config = TRPOConfig(max_kl=0.01, tensorboard=False, line_search_steps=3, accept_ratio=10.0)  # gain 10x the linear model's: impossible
    before = actor.get()
    stats = trust_region_step(policy, actor, obs, actions, old_logp, old_params, torch.randn(64), config)
    assert stats["step_accepted"] == 0.0 and stats["step_fraction"] == 0.0
    assert torch.equal(actor.get(), before)
