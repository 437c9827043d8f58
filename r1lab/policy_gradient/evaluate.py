"""Evaluate a policy: mean and std of the return over N episodes, optionally with a text or RGB rollout.

`evaluate_policy` is what every job runs at its end (summary.json's eval_return_mean /
eval_return_std); `load_run` rebuilds a trained policy from a run directory for `r1lab eval`;
`load_policy(RUN_DIR).predict(obs)` acts with it as Stable-Baselines3's `model.predict` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from r1lab.policy_gradient.config import CONFIGS
from r1lab.policy_gradient.policies import ActorCritic, NumpyPolicy
from r1lab.policy_gradient.rollout import ActionAdapter, ObservationEncoder, ObservationNormalizer, make_env
from r1lab.runs import ConfigError, build, read_config_file
from r1lab.runs.run_dir import latest_checkpoint

RENDER_MODES = {"ansi": "ansi", "rgb": "rgb_array"}


@dataclass
class Evaluation:
    returns: list[float]
    lengths: list[int]
    frames: list[Any] = field(default_factory=list)  # the first episode's renders, when asked for

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else math.nan


def evaluate_policy(policy: ActorCritic, env_id: str, episodes: int, *, env_kwargs: dict | None = None, seed: int = 0,
                    deterministic: bool = True, obs_stats: dict | None = None, render: str | None = None) -> Evaluation:
    """Run `episodes` episodes of one env (episode i reset with seed + i) and collect their returns.

    deterministic: the policy's mode (argmax / mean), else sampled actions from a Generator
    seeded with `seed`. obs_stats: the training run's observation-normaliser statistics
    (frozen here). render: None, "ansi" or "rgb" (the first episode's frames are kept).
    """
    env = _make_eval_env(env_id, env_kwargs, render)
    encode, env_action = ObservationEncoder(env.observation_space), ActionAdapter(env.action_space)
    normalizer = None
    if obs_stats is not None:
        normalizer = ObservationNormalizer(encode.size)
        normalizer.stats.load_state_dict(obs_stats)
    actor, rng = NumpyPolicy(policy), np.random.default_rng(seed)
    result = Evaluation([], [])
    try:
        for episode in range(episodes):
            keep_frames = render is not None and episode == 0
            raw, _ = env.reset(seed=seed + episode)
            total, length, done = 0.0, 0, False
            while not done:
                if keep_frames:
                    result.frames.append(env.render())
                obs = encode(np.asarray(raw)[None])
                if normalizer is not None:
                    obs = normalizer(obs, update=False)
                action = actor.act(obs, rng, deterministic)[0]
                raw, reward, terminated, truncated, _ = env.step(env_action(action))
                total, length, done = total + float(reward), length + 1, terminated or truncated
            if keep_frames:
                result.frames.append(env.render())
            result.returns.append(total)
            result.lengths.append(length)
    except gym.error.DependencyNotInstalled as error:
        raise ConfigError(f"rendering '{env_id}': {error}") from None
    finally:
        env.close()
    return result


def _make_eval_env(env_id: str, env_kwargs: dict | None, render: str | None) -> gym.Env:
    """The env, rendering as asked; a mode the env does not offer is one clear error, not a warning."""
    if render is None:
        return make_env(env_id, env_kwargs)
    if render not in RENDER_MODES:
        raise ConfigError(f"unknown render mode '{render}'; valid modes: {', '.join(RENDER_MODES)}")
    probe = make_env(env_id, env_kwargs)
    offered = list(probe.metadata.get("render_modes", []))
    probe.close()
    if RENDER_MODES[render] not in offered:
        raise ConfigError(f"'{env_id}' renders as {', '.join(offered) or 'nothing'}; it cannot render '{render}'")
    return make_env(env_id, env_kwargs, render_mode=RENDER_MODES[render])


def load_run(run_dir: str | Path) -> tuple[str, Any, ActorCritic, dict | None]:
    """(algorithm, config, policy, observation statistics) of a run, from its newest checkpoint."""
    import torch
    import yaml

    run_dir = Path(run_dir)
    algorithm = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("job") \
        if (run_dir / "config.yaml").is_file() else None
    if algorithm not in CONFIGS:
        raise ConfigError(f"{run_dir}: not a policy-gradient run (job {algorithm!r}; expected one of "
                          f"{', '.join(CONFIGS)})")
    config = build(CONFIGS[algorithm], read_config_file(run_dir), f"{run_dir}/config.yaml")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise ConfigError(f"{run_dir}: no checkpoint to evaluate")
    state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=False)
    env = make_env(config.env_id, config.env_kwargs)
    policy = ActorCritic(ObservationEncoder(env.observation_space).size, env.action_space, config.hidden_sizes,
                         config.activation, config.shared_network, config.log_std_init)
    env.close()
    policy.load_state_dict(state["policy"])
    return algorithm, config, policy, state["collector"]["obs_normalizer"]


class TrainedPolicy:
    """A trained policy from a run directory, acting on raw env observations.

        policy = r1lab.load_policy("runs/ppo-cartpole")
        action, _ = policy.predict(obs)                      # one observation, as env.reset() gives it
        actions, _ = policy.predict(vector_obs)              # or a batch, as a vector env gives it

    Observations are encoded and normalised with the run's frozen statistics, as in training;
    actions come back in the env's format (Box actions clipped to its bounds). `predict` returns
    (action, None), the shape of Stable-Baselines3's, whose second item is a recurrent state.
    """

    def __init__(self, algorithm: str, config: Any, policy: ActorCritic, obs_stats: dict | None,
                 observation_space: gym.Space, action_space: gym.Space):
        self.algorithm, self.config, self.policy = algorithm, config, policy
        self.observation_space, self.action_space = observation_space, action_space
        self._encode, self._env_action = ObservationEncoder(observation_space), ActionAdapter(action_space)
        self._normalizer = None
        if obs_stats is not None:
            self._normalizer = ObservationNormalizer(self._encode.size)
            self._normalizer.stats.load_state_dict(obs_stats)
        self._actor = NumpyPolicy(policy)

    def predict(self, observation, deterministic: bool = True, rng: np.random.Generator | None = None):
        raw = np.asarray(observation)
        single = raw.shape == tuple(self.observation_space.shape or ())
        obs = self._encode(raw[None] if single else raw)
        if self._normalizer is not None:
            obs = self._normalizer(obs, update=False)
        actions = self._env_action(self._actor.act(obs, rng or np.random.default_rng(), deterministic))
        return (actions[0] if single else actions), None


def load_policy(run_dir: str | Path) -> TrainedPolicy:
    """The trained policy of a `r1lab train` run (its newest checkpoint), ready to `predict`."""
    algorithm, config, policy, obs_stats = load_run(run_dir)
    env = make_env(config.env_id, config.env_kwargs)
    spaces = env.observation_space, env.action_space
    env.close()
    return TrainedPolicy(algorithm, config, policy, obs_stats, *spaces)
