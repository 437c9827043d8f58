"""MLP actor-critics for discrete and continuous actions, and two lean paths through them.

    ActorCritic    pi_theta(a|s) and V_phi(s): two MLPs, or one trunk with a policy head and a value
                   head (the seed's "policy network and value network sharing parameters")
    Categorical    discrete actions: the actor outputs logits
    DiagGaussian   continuous actions: the actor outputs the mean; log-std is one learned vector,
                   independent of the state
    FlatParameters all of a module's parameters in one contiguous tensor, their gradients in another
    NumpyPolicy    a torch-free view of the actor that picks the rollout's actions

Every log-prob, entropy and KL is a call into `r1lab.core`. Distribution parameters travel as one
tensor per state: the logits (..., A), or the mean and log-std side by side (..., 2 * D), so that
a rollout can store the old policy and TRPO / PPO's penalty can take KL(pi_old || pi_theta).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from r1lab.core import (
    categorical_entropy,
    categorical_kl,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
)

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


class Categorical(nn.Module):
    """pi(a|s) = softmax(logits)_a over `n` actions; the parameters are the logits (..., n)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.outputs = n

    def parameters_from(self, actor_output: torch.Tensor) -> torch.Tensor:
        return actor_output

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return categorical_log_prob(params, actions)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return categorical_entropy(params)

    def kl(self, old_params: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return categorical_kl(old_params, params)

    def sample(self, params: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        if deterministic:
            return params.argmax(dim=-1)
        return torch.multinomial(torch.softmax(params.reshape(-1, self.n), -1), 1).reshape(params.shape[:-1])


class DiagGaussian(nn.Module):
    """pi(a|s) = N(mu(s), diag(exp(log_std))^2) over `dim` action dimensions.

    The log-std is one learned vector shared by every state (as CleanRL and SB3 do); the
    parameters are (..., 2 * dim): the mean, then the log-std broadcast to the batch.
    """

    def __init__(self, dim: int, log_std_init: float = 0.0):
        super().__init__()
        self.dim = dim
        self.outputs = dim
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def parameters_from(self, mean: torch.Tensor) -> torch.Tensor:
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return params[..., : self.dim], params[..., self.dim :]

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.split(params)
        return gaussian_log_prob(actions, mean, log_std)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return gaussian_entropy(self.split(params)[1])

    def kl(self, old_params: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return gaussian_kl(*self.split(old_params), *self.split(params))

    def sample(self, params: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        mean, log_std = self.split(params)
        return mean if deterministic else mean + log_std.exp() * torch.randn_like(mean)


def _linear(inputs: int, outputs: int, gain: float) -> nn.Linear:
    """Orthogonal weights with `gain`, zero bias: the field's initialisation for PPO's MLPs."""
    layer = nn.Linear(inputs, outputs)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _body(inputs: int, hidden_sizes: list[int]) -> nn.ModuleList:
    """The hidden layers, orthogonal with gain sqrt(2)."""
    return nn.ModuleList(_linear(n_in, n_out, math.sqrt(2.0)) for n_in, n_out in zip([inputs, *hidden_sizes], hidden_sizes))


def mlp(x: torch.Tensor, layers: Iterable[nn.Linear], activation) -> torch.Tensor:
    """h <- activation(W h + b) through each layer.

    Calls F.linear on the layers' weights rather than the modules themselves: the same
    arithmetic without nn.Module's per-call hook machinery, 13 calls per PPO minibatch step.
    """
    for layer in layers:
        x = activation(F.linear(x, layer.weight, layer.bias))
    return x


def affine(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return F.linear(x, layer.weight, layer.bias)


class ActorCritic(nn.Module):
    """An MLP policy pi_theta(a|s) and value V_phi(s).

    shared=False: an actor MLP and a critic MLP, each `hidden_sizes` wide. shared=True: one trunk
    (`actor_body`) feeding both heads; `critic_body` is then None. Hidden layers are orthogonal
    with gain sqrt(2), the policy head with gain 0.01 (a near-uniform first policy) and the value
    head with gain 1. obs: (..., obs_size) float; every method keeps the leading dimensions.
    """

    def __init__(self, obs_size: int, action_space: spaces.Space, hidden_sizes: list[int] | tuple[int, ...] = (64, 64),
                 activation: str = "tanh", shared: bool = False, log_std_init: float = 0.0):
        super().__init__()
        hidden_sizes = list(hidden_sizes)
        if isinstance(action_space, spaces.Discrete):
            self.distribution: Categorical | DiagGaussian = Categorical(int(action_space.n))
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            self.distribution = DiagGaussian(action_space.shape[0], log_std_init)
        else:
            raise ValueError(f"unsupported action space {action_space}: r1lab's MLP policies take Discrete "
                             "or one-dimensional Box actions")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid activations: {', '.join(ACTIVATIONS)}")
        self.shared = shared
        self.activation = activation
        self._activation = ACTIVATIONS[activation]
        self.actor_body = _body(obs_size, hidden_sizes)
        self.critic_body = None if shared else _body(obs_size, hidden_sizes)
        self.actor_head = _linear(hidden_sizes[-1], self.distribution.outputs, 0.01)
        self.critic_head = _linear(hidden_sizes[-1], 1, 1.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(distribution parameters (..., P), values (...)) in one pass; the trunk runs once when shared."""
        features = mlp(obs, self.actor_body, self._activation)
        value_features = features if self.critic_body is None else mlp(obs, self.critic_body, self._activation)
        params = self.distribution.parameters_from(affine(features, self.actor_head))
        return params, affine(value_features, self.critic_head).squeeze(-1)

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        """The distribution parameters alone (..., P)."""
        return self.distribution.parameters_from(affine(mlp(obs, self.actor_body, self._activation), self.actor_head))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) alone (...)."""
        body = self.actor_body if self.critic_body is None else self.critic_body
        return affine(mlp(obs, body, self._activation), self.critic_head).squeeze(-1)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(params, actions)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return self.distribution.entropy(params)

    def kl(self, old_params: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """KL(pi_old || pi) per state, exact for both distributions."""
        return self.distribution.kl(old_params, params)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Actions for a batch of observations: sampled, or the mode (argmax / mean) when deterministic."""
        return self.distribution.sample(self.policy(obs), deterministic)

    def actor_parameters(self) -> list[nn.Parameter]:
        return [*self.actor_body.parameters(), *self.actor_head.parameters(), *self.distribution.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        if self.critic_body is None:
            raise ValueError("a shared trunk belongs to both actor and critic; critic_parameters() needs shared=False")
        return [*self.critic_body.parameters(), *self.critic_head.parameters()]


class FlatParameters:
    """Parameters that live in one contiguous vector, with their gradients in another.

    Each parameter becomes a view into `vector`, and its `.grad` a view into `vector.grad`
    (autograd accumulates into an existing gradient in place), so an optimiser over
    `[vector]` updates the module, gradient clipping takes one norm, and zeroing is one
    kernel. On a CPU, where every small kernel costs microseconds of dispatch, this makes
    the optimiser step and the clipping several times cheaper; TRPO reads and writes the
    actor as one vector for its line search. Zero gradients with `zero_grad()`, never with
    set_to_none (that would unlink the views).
    """

    def __init__(self, parameters: Iterable[nn.Parameter]):
        self.parameters = list(parameters)
        self.vector = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.parameters]))
        self.vector.grad = torch.zeros_like(self.vector)
        offset = 0
        for p in self.parameters:
            n = p.numel()
            p.data = self.vector.data[offset : offset + n].view_as(p)
            p.grad = self.vector.grad[offset : offset + n].view_as(p)
            offset += n

    def zero_grad(self) -> None:
        self.vector.grad.zero_()

    @torch.no_grad()
    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """torch.nn.utils.clip_grad_norm_ on the one flat gradient: g <- g * min(1, max_norm / (|g| + 1e-6)).

        The same formula and epsilon as torch's, in two kernels instead of its per-tensor loop and
        Python bookkeeping (70 of the ~1,100 microseconds of a CartPole PPO minibatch step).
        Returns |g| before clipping.
        """
        norm = torch.linalg.vector_norm(self.vector.grad)
        self.vector.grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        return norm

    def gradient(self) -> torch.Tensor:
        return self.vector.grad

    def get(self) -> torch.Tensor:
        return self.vector.detach().clone()

    @torch.no_grad()
    def set(self, values: torch.Tensor) -> None:
        self.vector.copy_(values)


class NumpyPolicy:
    """The actor as numpy arrays, for the rollout's one-step-at-a-time action choice.

    A rollout asks for actions of a few observations at a time, thousands of times per
    iteration; numpy's per-call cost is a few times below torch's there. The arrays are views of
    the live torch parameters (no copy), so build one per rollout. Sampling draws from the
    numpy Generator it is given: Gumbel-max for categorical actions
    (argmax(logits - log(-log U))), mean + sigma * N(0, 1) for Gaussian ones.
    """

    def __init__(self, policy: ActorCritic):
        linears = [*policy.actor_body, policy.actor_head]
        self.layers = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in linears]
        self.activation = np.tanh if policy.activation == "tanh" else _relu
        self.continuous = isinstance(policy.distribution, DiagGaussian)
        self.std = np.exp(policy.distribution.log_std.detach().numpy()) if self.continuous else None

    def output(self, obs: np.ndarray) -> np.ndarray:
        """Logits or means (N, A) for observations (N, obs_size) float32."""
        x = obs
        for weight, bias in self.layers[:-1]:
            x = self.activation(x @ weight + bias)
        weight, bias = self.layers[-1]
        return x @ weight + bias

    def act(self, obs: np.ndarray, rng: np.random.Generator, deterministic: bool = False) -> np.ndarray:
        out = self.output(obs)
        if self.continuous:
            return out if deterministic else out + self.std * rng.standard_normal(out.shape, dtype=np.float32)
        if deterministic:
            return out.argmax(axis=-1)
        return (out - np.log(-np.log(rng.random(out.shape)))).argmax(axis=-1)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)
