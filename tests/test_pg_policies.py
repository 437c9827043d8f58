"""MLP actor-critics: Gaussian and categorical heads, the numpy action path, flat parameters."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Normal

from r1lab.policy_gradient.policies import ActorCritic, FlatParameters, NumpyPolicy

BOX = spaces.Box(-2.0, 2.0, (2,), np.float32)


def test_gaussian_policy_log_prob_and_entropy_match_the_closed_form():
    torch.manual_seed(0)
    policy = ActorCritic(3, BOX, log_std_init=-0.5)
    with torch.no_grad():
        policy.distribution.log_std.copy_(torch.tensor([-0.5, 0.3]))
    obs = torch.randn(16, 3)
    params = policy.policy(obs)
    mean, sigma = params[:, :2], torch.tensor([-0.5, 0.3]).exp()
    assert torch.equal(params[:, 2:], torch.tensor([-0.5, 0.3]).expand(16, 2))
    actions = mean + sigma * torch.randn(16, 2)
    # log N(a; mu, sigma^2) summed over the two independent dimensions
    by_hand = (-((actions - mean) ** 2) / (2 * sigma**2) - torch.log(sigma) - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(policy.log_prob(params, actions), by_hand)
    torch.testing.assert_close(policy.log_prob(params, actions), Normal(mean, sigma).log_prob(actions).sum(-1))
    entropy = sum(0.5 * math.log(2 * math.pi * math.e * s**2) for s in sigma.tolist())
    torch.testing.assert_close(policy.entropy(params), torch.full((16,), entropy))


def test_gaussian_log_std_is_learned_and_state_independent():
    policy = ActorCritic(3, BOX)
    assert any(p is policy.distribution.log_std for p in policy.actor_parameters())
    params = policy.policy(torch.randn(5, 3))
    assert torch.equal(params[0, 2:], params[4, 2:])
    loss = -policy.entropy(params).mean()
    loss.backward()
    assert torch.allclose(policy.distribution.log_std.grad, -torch.ones(2))  # dH/dlog_sigma = 1 per dimension


def test_kl_between_a_policy_and_itself_is_zero_and_grows_as_it_moves():
    torch.manual_seed(1)
    for space in (spaces.Discrete(3), BOX):
        policy = ActorCritic(4, space)
        obs = torch.randn(8, 4)
        old = policy.policy(obs).detach()
        assert torch.allclose(policy.kl(old, policy.policy(obs)), torch.zeros(8), atol=1e-7)
        with torch.no_grad():
            policy.actor_head.weight.add_(torch.randn_like(policy.actor_head.weight))
        assert (policy.kl(old, policy.policy(obs)) > 0).all()


def test_initialisation_is_orthogonal_with_the_fields_gains():
    policy = ActorCritic(4, spaces.Discrete(2), hidden_sizes=[64, 64])
    hidden = policy.actor_body[1].weight  # 64 x 64: orthogonal with gain sqrt(2)
    torch.testing.assert_close(hidden @ hidden.T, 2.0 * torch.eye(64), atol=1e-5, rtol=0)
    head = policy.actor_head.weight  # gain 0.01: a near-uniform first policy
    torch.testing.assert_close(head @ head.T, 1e-4 * torch.eye(2), atol=1e-9, rtol=0)
    assert all((layer.bias == 0).all() for layer in policy.modules() if isinstance(layer, nn.Linear))
    probs = torch.softmax(policy.policy(torch.randn(100, 4)), -1)
    assert (probs - 0.5).abs().max() < 0.05


def test_shared_trunk_feeds_both_heads():
    separate = ActorCritic(4, spaces.Discrete(2))
    shared = ActorCritic(4, spaces.Discrete(2), shared=True)
    assert shared.critic_body is None
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(separate) - count(shared) == 4 * 64 + 64 + 64 * 64 + 64  # the critic's own body
    params, values = shared(torch.randn(7, 4))
    assert params.shape == (7, 2) and values.shape == (7,)
    values.sum().backward()
    assert shared.actor_body[0].weight.grad.abs().sum() > 0  # the critic's loss trains the trunk too
    with pytest.raises(ValueError, match="shared trunk"):
        shared.critic_parameters()


def test_deterministic_and_sampled_actions():
    torch.manual_seed(2)
    policy = ActorCritic(4, spaces.Discrete(3))
    obs = torch.randn(6, 4)
    assert torch.equal(policy.act(obs, deterministic=True), policy.policy(obs).argmax(-1))
    assert policy.act(obs).shape == (6,)
    continuous = ActorCritic(4, BOX)
    assert torch.equal(continuous.act(obs, deterministic=True), continuous.policy(obs)[:, :2])
    assert not torch.equal(continuous.act(obs), continuous.act(obs, deterministic=True))


def test_numpy_policy_samples_the_torch_policys_distribution():
    torch.manual_seed(3)
    policy = ActorCritic(4, spaces.Discrete(3))
    with torch.no_grad():
        policy.actor_head.weight.mul_(200.0)  # a policy far from uniform, to see the probabilities
    obs = np.random.default_rng(0).normal(size=(1, 4)).astype(np.float32)
    actor, rng = NumpyPolicy(policy), np.random.default_rng(0)
    logits = policy.policy(torch.from_numpy(obs))[0]
    np.testing.assert_allclose(actor.output(obs)[0], logits.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert actor.act(obs, rng, deterministic=True)[0] == logits.argmax().item()
    draws = np.array([actor.act(obs, rng)[0] for _ in range(20000)])
    frequencies = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(frequencies, torch.softmax(logits, -1).detach().numpy(), atol=0.015)


def test_numpy_policy_samples_the_gaussian():
    torch.manual_seed(4)
    policy = ActorCritic(3, BOX, log_std_init=-1.0)
    obs = np.ones((20000, 3), np.float32)
    actions = NumpyPolicy(policy).act(obs, np.random.default_rng(0))
    mean = policy.policy(torch.from_numpy(obs[:1]))[0, :2].detach().numpy()
    np.testing.assert_allclose(actions.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(actions.std(0), math.exp(-1.0), rtol=0.02)
    assert NumpyPolicy(policy).act(obs[:2], np.random.default_rng(0), deterministic=True) == pytest.approx(
        np.stack([mean, mean]), abs=1e-6)


def test_numpy_policy_sees_updated_parameters_through_views():
    policy = ActorCritic(2, spaces.Discrete(2))
    actor = NumpyPolicy(policy)
    with torch.no_grad():
        policy.actor_head.bias.copy_(torch.tensor([0.0, 50.0]))
    assert actor.act(np.zeros((3, 2), np.float32), np.random.default_rng(0), deterministic=True).tolist() == [1, 1, 1]


def test_flat_parameters_train_exactly_like_separate_ones():
    def train(flat: bool) -> list[torch.Tensor]:
        torch.manual_seed(5)
        policy = ActorCritic(4, spaces.Discrete(2))
        if flat:
            params = FlatParameters(policy.parameters())
            optimizer = torch.optim.Adam([params.vector], lr=1e-2)
        else:
            optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
        data = torch.randn(64, 4)
        for _ in range(5):
            logits, values = policy(data)
            loss = logits.pow(2).mean() + (values - 1).pow(2).mean()
            if flat:
                params.zero_grad()
            else:
                optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params.vector if flat else list(policy.parameters()), 0.1)
            optimizer.step()
        return [p.detach().clone() for p in policy.parameters()]

    for a, b in zip(train(flat=True), train(flat=False)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_flat_parameters_are_views_of_one_vector():
    policy = ActorCritic(4, BOX)
    params = FlatParameters(policy.actor_parameters())
    assert params.vector.numel() == sum(p.numel() for p in policy.actor_parameters())
    params.set(torch.zeros_like(params.vector))
    assert all((p == 0).all() for p in policy.actor_parameters())
    policy.log_prob(policy.policy(torch.randn(3, 4)), torch.zeros(3, 2)).sum().backward()
    assert params.gradient().abs().sum() > 0 and policy.distribution.log_std.grad.data_ptr() != 0
    state = {k: v.clone() for k, v in policy.state_dict().items()}
    params.set(torch.ones_like(params.vector))
    policy.load_state_dict(state)  # loading writes into the same storage
    assert (params.vector == 0).all()


@pytest.mark.parametrize("max_norm", [0.05, 100.0])
def test_flat_gradient_clipping_is_torchs_clip_grad_norm(max_norm):
    torch.manual_seed(6)
    policy = ActorCritic(4, spaces.Discrete(2))
    params = FlatParameters(policy.parameters())
    logits, values = policy(torch.randn(32, 4))
    (logits.pow(2).sum() + values.sum()).backward()
    copies = []  # the same gradients on ordinary separate parameters, clipped by torch
    for p in policy.parameters():
        copy = nn.Parameter(torch.zeros_like(p))
        copy.grad = p.grad.clone()
        copies.append(copy)
    expected_norm = nn.utils.clip_grad_norm_(copies, max_norm)
    norm = params.clip_grad_norm_(max_norm)
    torch.testing.assert_close(norm, expected_norm)
    for copy, p in zip(copies, policy.parameters()):
        torch.testing.assert_close(p.grad, copy.grad)
