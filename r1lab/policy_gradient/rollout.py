"""Rollouts: Gymnasium vector environments, observation encoding and normalisation, the rollout buffer.

Autoreset. The vector env runs in Gymnasium 1.x's SAME_STEP autoreset mode: when a sub-env's
episode ends at step t, that same step() resets it, returns the *reset* observation in `obs` and
the episode's last observation in `infos["final_obs"]`. The collector therefore records for every
step t the transition (s_t, a_t, r_t, s_{t+1}) with s_{t+1} = the final observation where the
episode ended (terminated or truncated), never the reset one; every recorded step is a real
transition (the default NEXT_STEP mode would instead spend the step after each episode on a
reset, a step that must not be trained on). `gae` then bootstraps a truncated step from
V(final observation) and a terminated one from nothing.

Rollout tensors are time-major, (T, N, ...) for T steps of N environments, as `r1lab.core` takes them.
"""

from __future__ import annotations

import difflib
import importlib
import pickle
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import EzPickle
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from r1lab.runs import ConfigError

RECENT_EPISODES = 100  # the window of the logged episode_return / episode_length (as SB3 logs them)


# ---------------------------------------------------------------- environments


def import_env_packages(packages: list[str] | tuple[str, ...] = ()) -> None:
    """Import the modules that register environments (rl-zoo's `--gym-packages`), by name."""
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ConfigError(f"gym package '{name}' could not be imported: {error}") from None


def check_env_id(env_id: str) -> None:
    """Stop with one line naming the unknown id and the registered ids closest to it.

    Gymnasium's `module:EnvId` form imports `module` first, which registers `EnvId`."""
    import r1lab.envs  # noqa: F401  (registers r1lab/Maze-v0)

    module, _, name = env_id.rpartition(":")
    if module:
        import_env_packages([module])
    if name in gym.registry:
        return
    close = difflib.get_close_matches(name, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see gymnasium.pprint_registry() for the registered ids"
    raise ConfigError(f"unknown environment '{env_id}'{hint}")


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None, render_mode: str | None = None) -> gym.Env:
    """gym.make with the id checked, and a bad keyword or a missing optional dependency (Box2D,
    MuJoCo, ...) reported as one line."""
    check_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        return gym.make(env_id, **kwargs)
    except TypeError as error:
        raise ConfigError(f"env_kwargs for '{env_id}': {error}") from None
    except gym.error.DependencyNotInstalled as error:
        raise ConfigError(f"'{env_id}' needs a package that is not installed: {error}") from None


def make_vector_env(env_id: str, num_envs: int, vectorization: str = "sync",
                    env_kwargs: dict[str, Any] | None = None) -> gym.vector.VectorEnv:
    """N copies of `env_id` in a SyncVectorEnv (or AsyncVectorEnv) with SAME_STEP autoreset."""
    make_env(env_id, env_kwargs).close()  # fail here, in this process, on a bad id or keyword
    fns = [lambda: gym.make(env_id, **(env_kwargs or {})) for _ in range(num_envs)]
    if vectorization == "async":
        return AsyncVectorEnv(fns, copy=False, autoreset_mode=AutoresetMode.SAME_STEP)
    return SyncVectorEnv(fns, copy=False, autoreset_mode=AutoresetMode.SAME_STEP)


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space, env_id: str) -> None:
    if not isinstance(observation_space, (spaces.Box, spaces.Discrete)):
        raise ConfigError(f"'{env_id}' observes {observation_space}: r1lab's MLP policies take Box or Discrete observations")
    if not (isinstance(action_space, spaces.Discrete)
            or (isinstance(action_space, spaces.Box) and len(action_space.shape) == 1)):
        raise ConfigError(f"'{env_id}' acts in {action_space}: r1lab's MLP policies take Discrete or 1-D Box actions")


class ObservationEncoder:
    """Observations as float32 vectors: a Box flattened, a Discrete index one-hot (the maze's cells)."""

    def __init__(self, space: spaces.Space):
        self.discrete = isinstance(space, spaces.Discrete)
        self.size = int(space.n) if self.discrete else int(np.prod(space.shape))
        self._eye = np.eye(self.size, dtype=np.float32) if self.discrete else None

    def __call__(self, obs: Any) -> np.ndarray:
        """(N, ...) observations -> (N, size) float32."""
        if self.discrete:
            return self._eye[np.asarray(obs, dtype=np.int64)]
        obs = np.asarray(obs, dtype=np.float32)
        return obs.reshape(obs.shape[0], self.size)


class ActionAdapter:
    """What the env receives: discrete actions as they are, Box actions clipped to its bounds.

    The buffer keeps the unclipped sample, whose log-prob the Gaussian defines.
    """

    def __init__(self, space: spaces.Space):
        self.box = isinstance(space, spaces.Box)
        self.low = space.low if self.box else None
        self.high = space.high if self.box else None

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.low, self.high) if self.box else actions


# ---------------------------------------------------------------- normalisation


class RunningMeanStd:
    """Mean and variance of everything seen so far, merged batch by batch (Chan et al.'s update)."""

    def __init__(self, shape: tuple[int, ...] = ()):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch_mean, batch_var, batch_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean = self.mean + delta * batch_count / total
        self.var = (self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var, self.count = state["mean"].copy(), state["var"].copy(), state["count"]


class ObservationNormalizer:
    """obs -> clip((obs - mean) / sqrt(var + eps), -clip, clip) with running statistics."""

    def __init__(self, size: int, clip: float = 10.0, eps: float = 1e-8):
        self.stats = RunningMeanStd((size,))
        self.clip, self.eps = clip, eps

    def __call__(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        if update:
            self.stats.update(obs)
        scaled = (obs - self.stats.mean) / np.sqrt(self.stats.var + self.eps)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)


class RewardNormalizer:
    """r -> r / sqrt(Var[G] + eps), with G the running discounted return (reset at episode ends).

    Stable-Baselines3's VecNormalize scaling: the reward's sign and the optimal policy are
    unchanged, its scale is brought near 1 whatever the env's units.
    """

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.stats = RunningMeanStd(())
        self.returns = np.zeros(num_envs, np.float64)
        self.gamma, self.clip, self.eps = gamma, clip, eps

    def __call__(self, rewards: np.ndarray, episode_end: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(self.returns)
        self.returns[episode_end] = 0.0
        return np.clip(rewards / np.sqrt(self.stats.var + self.eps), -self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return {"stats": self.stats.state_dict(), "returns": self.returns.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state["stats"])
        self.returns = state["returns"].copy()


# ---------------------------------------------------------------- the rollout buffer


@dataclass
class Rollout:
    """T steps of N environments, time-major. next_obs[t] is s_{t+1}: the final observation where an
    episode ended at t (terminated or truncated), never the reset observation."""

    obs: torch.Tensor  # (T, N, obs_size) float32, normalised when normalize_obs
    actions: torch.Tensor  # (T, N) int64, or (T, N, action_dim) float32 (unclipped samples)
    rewards: torch.Tensor  # (T, N) float32, scaled when normalize_reward
    terminated: torch.Tensor  # (T, N) bool: the episode reached a terminal state at t (no bootstrap)
    truncated: torch.Tensor  # (T, N) bool: cut by a time limit at t (bootstrap from V(next_obs[t]))
    next_obs: torch.Tensor  # (T, N, obs_size)
    episode_returns: list[float] = field(default_factory=list)  # raw returns of episodes finished here
    episode_lengths: list[int] = field(default_factory=list)

    @property
    def episode_end(self) -> torch.Tensor:
        return self.terminated | self.truncated

    @property
    def steps(self) -> int:
        return self.rewards.numel()


class RolloutCollector:
    """Steps a vector env with a policy's actions and records Rollouts; owns everything that must
    survive a checkpoint for a resumed run to continue exactly: the current observations, the
    unfinished episodes' returns, the normalisers and (for sync envs whose state pickles) the envs."""

    def __init__(self, envs: gym.vector.VectorEnv, steps_per_env: int, gamma: float,
                 normalize_obs: bool = False, normalize_reward: bool = False):
        self.envs = envs
        self.num_envs = envs.num_envs
        self.steps_per_env = steps_per_env
        self.encode = ObservationEncoder(envs.single_observation_space)
        self.env_action = ActionAdapter(envs.single_action_space)
        self.continuous = isinstance(envs.single_action_space, spaces.Box)
        self.action_shape = envs.single_action_space.shape if self.continuous else ()
        self.obs_normalizer = ObservationNormalizer(self.encode.size) if normalize_obs else None
        self.reward_normalizer = RewardNormalizer(self.num_envs, gamma) if normalize_reward else None
        self.episode_return = np.zeros(self.num_envs, np.float64)
        self.episode_length = np.zeros(self.num_envs, np.int64)
        self.recent_returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.recent_lengths: deque[int] = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0
        self.obs: np.ndarray | None = None

    def reset(self, seed: int) -> None:
        raw, _ = self.envs.reset(seed=seed)
        self.obs = self._observe(raw)
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0

    def _observe(self, raw: Any, update: bool = True) -> np.ndarray:
        obs = self.encode(raw)
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs, update)

    def collect(self, policy, rng: np.random.Generator) -> Rollout:
        """T = steps_per_env steps of every env with `policy.act(obs, rng)` (a NumpyPolicy)."""
        T, N = self.steps_per_env, self.num_envs
        obs_buf = np.empty((T, N, self.encode.size), np.float32)
        next_buf = np.empty((T, N, self.encode.size), np.float32)
        action_buf = np.empty((T, N, *self.action_shape), np.float32 if self.continuous else np.int64)
        reward_buf = np.empty((T, N), np.float32)
        terminated_buf = np.empty((T, N), bool)
        truncated_buf = np.empty((T, N), bool)
        returns, lengths = [], []
        for t in range(T):
            obs_buf[t] = self.obs
            actions = policy.act(self.obs, rng)
            raw, rewards, terminated, truncated, infos = self.envs.step(self.env_action(actions))
            action_buf[t] = actions
            terminated_buf[t] = terminated
            truncated_buf[t] = truncated
            next_obs = self._observe(raw)
            next_buf[t] = next_obs
            self.episode_return += rewards
            self.episode_length += 1
            done = terminated | truncated
            if self.reward_normalizer is not None:
                rewards = self.reward_normalizer(rewards, done)
            reward_buf[t] = rewards
            if done.any():
                for i in np.flatnonzero(done):  # s_{t+1} of a finished episode is its final observation
                    next_buf[t, i] = self._observe(np.asarray(infos["final_obs"][i])[None], update=False)[0]
                    returns.append(float(self.episode_return[i]))
                    lengths.append(int(self.episode_length[i]))
                self.episode_return[done] = 0.0
                self.episode_length[done] = 0
            self.obs = next_obs.copy()
        self.recent_returns.extend(returns)
        self.recent_lengths.extend(lengths)
        self.episodes += len(returns)
        return Rollout(torch.from_numpy(obs_buf), torch.from_numpy(action_buf), torch.from_numpy(reward_buf),
                       torch.from_numpy(terminated_buf), torch.from_numpy(truncated_buf), torch.from_numpy(next_buf),
                       returns, lengths)

    # ---- checkpoint state ------------------------------------------------------------------
    def env_states(self) -> list[bytes] | None:
        """The sub-envs pickled, when that captures their state: a SyncVectorEnv whose envs are not
        EzPickle (EzPickle rebuilds an env from its constructor arguments, losing its state)."""
        if not isinstance(self.envs, SyncVectorEnv):
            return None
        if any(isinstance(env.unwrapped, EzPickle) for env in self.envs.envs):
            return None
        return [pickle.dumps(env) for env in self.envs.envs]

    def state_dict(self) -> dict[str, Any]:
        return {
            "obs": self.obs.copy(),
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "episodes": self.episodes,
            "obs_normalizer": None if self.obs_normalizer is None else self.obs_normalizer.stats.state_dict(),
            "reward_normalizer": None if self.reward_normalizer is None else self.reward_normalizer.state_dict(),
            "env_states": self.env_states(),
        }

    def load_state_dict(self, state: dict[str, Any], reset_seed: int) -> bool:
        """Restore; returns True when the envs continue exactly where they were, False when they
        could not be saved (async, or EzPickle envs) and restart from a reset with `reset_seed`."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.stats.load_state_dict(state["obs_normalizer"])
        if self.reward_normalizer is not None:
            self.reward_normalizer.load_state_dict(state["reward_normalizer"])
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.extend(state["recent_lengths"])
        self.episodes = state["episodes"]
        if state["env_states"] is None:
            warnings.warn("the environments' state could not be checkpointed (async vectorisation or an EzPickle env): "
                          "the resumed run restarts their episodes from a seeded reset", stacklevel=2)
            self.reset(reset_seed)
            return False
        self.envs.close()
        restored = [pickle.loads(blob) for blob in state["env_states"]]
        self.envs = SyncVectorEnv([lambda env=env: env for env in restored], copy=False,
                                  autoreset_mode=AutoresetMode.SAME_STEP)
        self.obs = state["obs"].copy()
        self.episode_return = state["episode_return"].copy()
        self.episode_length = state["episode_length"].copy()
        return True

    def close(self) -> None:
        self.envs.close()
