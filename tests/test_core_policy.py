"""r1lab.core.policy: action distributions and the REINFORCE / TRPO surrogates, against hand-worked
numbers and torch.distributions."""

import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from r1lab.core import (
    categorical_entropy,
    categorical_kl,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    importance_sampled_surrogate,
    policy_gradient_loss,
)


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in double precision, restored for the tests of other files."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_gaussian_log_prob_matches_the_closed_form_by_hand():
    # one 2-D action: a = (1, -1), mu = (0, 0), sigma = (1, 2)
    # log N = -(1^2)/2 - log 1 - log sqrt(2 pi)  +  -(1/2)^2/2 - log 2 - log sqrt(2 pi)
    expected = -0.5 - 0.125 - math.log(2.0) - math.log(2.0 * math.pi)
    got = gaussian_log_prob(torch.tensor([1.0, -1.0]), torch.zeros(2), torch.log(torch.tensor([1.0, 2.0])))
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_gaussian_entropy_matches_the_closed_form_by_hand():
    # H of N(mu, sigma^2) is 0.5 * log(2 pi e sigma^2); summed over independent dimensions
    sigmas = torch.tensor([0.5, 3.0])
    expected = sum(0.5 * math.log(2 * math.pi * math.e * s.item() ** 2) for s in sigmas)
    assert gaussian_entropy(torch.log(sigmas)).item() == pytest.approx(expected, abs=1e-12)


def test_gaussian_formulas_match_torch_distributions_on_a_batch():
    torch.manual_seed(0)
    mean, log_std = torch.randn(64, 3), torch.randn(3) * 0.5   # state-independent log-std
    actions = mean + torch.randn(64, 3)
    reference = Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian_log_prob(actions, mean, log_std), reference.log_prob(actions).sum(-1))
    torch.testing.assert_close(gaussian_entropy(log_std).expand(64), reference.entropy().sum(-1))
    mean_q, log_std_q = torch.randn(64, 3), torch.randn(64, 3) * 0.5
    torch.testing.assert_close(gaussian_kl(mean, log_std, mean_q, log_std_q),
                               kl_divergence(reference, Normal(mean_q, log_std_q.exp())).sum(-1))


def test_categorical_formulas_match_torch_distributions():
    torch.manual_seed(1)
    logits, other = torch.randn(32, 5) * 3, torch.randn(32, 5)
    actions = torch.randint(0, 5, (32,))
    torch.testing.assert_close(categorical_log_prob(logits, actions), Categorical(logits=logits).log_prob(actions))
    torch.testing.assert_close(categorical_kl(logits, other),
                               kl_divergence(Categorical(logits=logits), Categorical(logits=other)))
    torch.testing.assert_close(categorical_entropy(logits), Categorical(logits=logits).entropy())


def test_kl_is_zero_between_equal_distributions_and_positive_otherwise():
    logits = torch.randn(4, 3)
    assert torch.allclose(categorical_kl(logits, logits), torch.zeros(4))
    assert torch.allclose(categorical_kl(logits, logits + 7.0), torch.zeros(4))  # softmax shift invariance
    assert (categorical_kl(logits, torch.randn(4, 3)) > 0).all()
    mean, log_std = torch.randn(4, 2), torch.randn(2)
    assert torch.allclose(gaussian_kl(mean, log_std, mean, log_std), torch.zeros(4))
    assert (gaussian_kl(mean, log_std, mean + 0.1, log_std) > 0).all()


def test_kl_hessian_at_the_old_policy_is_the_fisher_matrix():
    # TRPO's Fisher-vector products differentiate the KL twice: at theta = theta_old its Hessian
    # equals E[grad log pi grad log pi^T] (here for a single state's logits, exactly)
    old = torch.tensor([0.2, -0.4, 1.0])
    hessian = torch.autograd.functional.hessian(lambda z: categorical_kl(old, z), old.clone())
    p = torch.softmax(old, -1)
    fisher = torch.diag(p) - torch.outer(p, p)
    torch.testing.assert_close(hessian, fisher)


def test_surrogate_gradient_at_the_old_policy_is_the_policy_gradient():
    logits = torch.randn(8, 2, requires_grad=True)
    actions = torch.randint(0, 2, (8,))
    advantages = torch.randn(8)
    old_logp = categorical_log_prob(logits, actions).detach()
    (grad_surrogate,) = torch.autograd.grad(
        importance_sampled_surrogate(categorical_log_prob(logits, actions), old_logp, advantages).mean(), logits)
    (grad_pg,) = torch.autograd.grad(policy_gradient_loss(categorical_log_prob(logits, actions), advantages).mean(),
                                     logits)
    torch.testing.assert_close(grad_surrogate, grad_pg)
    assert policy_gradient_loss(torch.tensor([-0.5]), torch.tensor([2.0])).item() == 1.0


def test_importance_ratio_reweights_by_the_probability_ratio():
    logp, old_logp = torch.log(torch.tensor([0.6])), torch.log(torch.tensor([0.3]))
    assert importance_sampled_surrogate(logp, old_logp, torch.tensor([1.5])).item() == pytest.approx(-3.0)
