"""The rollout buffer over Gymnasium vector envs: SAME_STEP autoreset, truncation versus termination,
GAE through the buffer against a hand-worked case, observation encoding and normalisation."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from r1lab.core import gae
from r1lab.policy_gradient.rollout import (
    ObservationNormalizer,
    RewardNormalizer,
    RolloutCollector,
    RunningMeanStd,
    make_vector_env,
)
from r1lab.runs import ConfigError


class CounterEnv(gym.Env):
    """obs = [moves so far in the episode]; reward 1 per move; terminates after `terminate_at` moves
    when given (the time-limit version is cut by gym's TimeLimit wrapper instead)."""

    observation_space = spaces.Box(0.0, 100.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, terminate_at=None):
        self.terminate_at, self.moves = terminate_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.moves = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.moves += 1
        terminated = self.terminate_at is not None and self.moves >= self.terminate_at
        return np.array([float(self.moves)], np.float32), 1.0, terminated, False, {}


TRUNCATED_ID, TERMINATED_ID = "r1lab-test/CounterTimeLimit-v0", "r1lab-test/CounterTerminal-v0"
if TRUNCATED_ID not in gym.registry:
    gym.register(TRUNCATED_ID, entry_point=CounterEnv, max_episode_steps=3)
    gym.register(TERMINATED_ID, entry_point=CounterEnv, kwargs={"terminate_at": 3})


class FirstAction:
    """A stand-in policy: always action 0 (the counter ignores actions)."""

    def act(self, obs, rng, deterministic=False):
        return np.zeros(len(obs), np.int64)


def collect(env_id, steps=4, num_envs=1, **kwargs):
    collector = RolloutCollector(make_vector_env(env_id, num_envs), steps, gamma=0.5, **kwargs)
    collector.reset(seed=0)
    return collector, collector.collect(FirstAction(), np.random.default_rng(0))


def test_truncated_episode_bootstraps_from_final_observation():
    # 4 steps of an episode cut after 3 moves: s = 0 1 2 | 0 ; s' = 1 2 3(final) | 1
    _, rollout = collect(TRUNCATED_ID)
    assert rollout.obs[:, 0, 0].tolist() == [0, 1, 2, 0]
    assert rollout.next_obs[:, 0, 0].tolist() == [1, 2, 3, 1]  # the final observation, not the reset 0
    assert rollout.truncated[:, 0].tolist() == [False, False, True, False]
    assert not rollout.terminated.any()

    # hand-worked GAE with V(s) = 10 s, gamma = lambda = 0.5:
    #   delta = r + gamma V(s') (1 - terminated) - V(s) = 6, 1, 1 + 0.5 * 30 - 20 = -4, 6
    #   A_3 = 6;  A_2 = -4 (the episode ends: no carry from A_3);  A_1 = 1 + 0.25 * -4 = 0;  A_0 = 6 + 0.25 * 0 = 6
    values, next_values = 10 * rollout.obs[..., 0], 10 * rollout.next_obs[..., 0]
    advantages, returns = gae(rollout.rewards, values, next_values, rollout.terminated, rollout.episode_end, 0.5, 0.5)
    assert advantages[:, 0].tolist() == [6.0, 0.0, -4.0, 6.0]
    assert returns[:, 0].tolist() == [6.0, 10.0, 16.0, 6.0]


def test_terminated_episode_does_not_bootstrap():
    _, rollout = collect(TERMINATED_ID)
    assert rollout.terminated[:, 0].tolist() == [False, False, True, False]
    assert not rollout.truncated.any()
    values, next_values = 10 * rollout.obs[..., 0], 10 * rollout.next_obs[..., 0]
    advantages, _ = gae(rollout.rewards, values, next_values, rollout.terminated, rollout.episode_end, 0.5, 0.5)
    # delta_2 = 1 - 20 = -19: nothing after a terminal state;  A_1 = 1 + 0.25 * -19;  A_0 = 6 + 0.25 * A_1
    assert advantages[:, 0].tolist() == pytest.approx([6.0 + 0.25 * (1 - 0.25 * 19), 1 - 0.25 * 19, -19.0, 6.0])


def test_every_recorded_step_is_a_real_transition():
    # NEXT_STEP autoreset would spend the step after each episode end on a reset (reward 0, action
    # ignored); in SAME_STEP mode every step is a move with its reward, and s_{t+1} follows s_t
    collector, rollout = collect(TRUNCATED_ID, steps=10, num_envs=3)
    assert (rollout.rewards == 1).all()
    following = rollout.obs[1:]
    continues = ~rollout.episode_end[:-1]
    assert torch.equal(following[continues], rollout.next_obs[:-1][continues])
    assert (following[rollout.episode_end[:-1]] == 0).all()  # after an episode end: the reset observation
    assert rollout.episode_returns == [3.0] * 9 and rollout.episode_lengths == [3] * 9
    assert collector.episodes == 9 and list(collector.recent_returns) == [3.0] * 9
    assert torch.equal(torch.from_numpy(collector.obs), rollout.next_obs[-1])  # the next rollout starts there


def test_async_vector_env_collects_the_same_rollout_as_sync():
    sync = RolloutCollector(make_vector_env("CartPole-v1", 2), 40, 0.99)
    parallel = RolloutCollector(make_vector_env("CartPole-v1", 2, "async"), 40, 0.99)
    rollouts = []
    for collector in (sync, parallel):
        collector.reset(seed=3)
        from r1lab.policy_gradient.policies import ActorCritic, NumpyPolicy

        torch.manual_seed(0)
        policy = NumpyPolicy(ActorCritic(4, spaces.Discrete(2)))
        rollouts.append(collector.collect(policy, np.random.default_rng(1)))
        collector.close()
    for field in ("obs", "actions", "rewards", "terminated", "truncated", "next_obs"):
        assert torch.equal(getattr(rollouts[0], field), getattr(rollouts[1], field)), field
    assert rollouts[0].episode_end.any()


def test_discrete_observations_are_one_hot():
    _, rollout = collect("r1lab/Maze-v0", steps=3, num_envs=2)
    assert rollout.obs.shape == (3, 2, 9)
    assert (rollout.obs.sum(-1) == 1).all() and (rollout.obs[0, :, 0] == 1).all()  # both start in S1


def test_running_mean_std_merges_batches_exactly():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 2))
    stats = RunningMeanStd((2,))
    for chunk in np.split(data, [7, 300, 301, 650]):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(0), atol=1e-3)  # the 1e-4 prior count barely shows
    np.testing.assert_allclose(stats.var, data.var(0), rtol=1e-3)
    normalizer = ObservationNormalizer(2)
    normalizer.stats = stats
    scaled = normalizer(data, update=False)
    np.testing.assert_allclose(scaled.mean(0), 0.0, atol=1e-2)
    np.testing.assert_allclose(scaled.std(0), 1.0, atol=1e-2)


def test_reward_normalizer_scales_by_the_discounted_return_std_and_resets_at_episode_ends():
    scaler = RewardNormalizer(num_envs=1, gamma=0.9)
    for _ in range(500):
        scaled = scaler(np.array([1.0]), np.array([False]))
    # the discounted return converges to 1 / (1 - 0.9) = 10 with a small variance: rewards scale up
    assert scaler.returns[0] == pytest.approx(10.0, abs=1e-3) and scaled[0] > 1.0
    scaler(np.array([1.0]), np.array([True]))
    assert scaler.returns[0] == 0.0
    restored = RewardNormalizer(1, 0.9)
    restored.load_state_dict(scaler.state_dict())
    assert restored.stats.var == scaler.stats.var and restored.stats.count == scaler.stats.count


def test_collector_state_restores_the_envs_exactly():
    from r1lab.policy_gradient.policies import ActorCritic, NumpyPolicy

    torch.manual_seed(0)
    policy = NumpyPolicy(ActorCritic(4, spaces.Discrete(2)))
    first = RolloutCollector(make_vector_env("CartPole-v1", 3), 50, 0.99, normalize_obs=True)
    first.reset(seed=5)
    first.collect(policy, np.random.default_rng(0))
    state = first.state_dict()
    expected = first.collect(policy, np.random.default_rng(1))
    second = RolloutCollector(make_vector_env("CartPole-v1", 3), 50, 0.99, normalize_obs=True)
    second.reset(seed=99)  # a different world, replaced by the checkpoint
    assert second.load_state_dict(state, reset_seed=0)
    again = second.collect(policy, np.random.default_rng(1))
    assert torch.equal(again.obs, expected.obs) and torch.equal(again.rewards, expected.rewards)
    assert again.episode_returns == expected.episode_returns


def test_unknown_env_id_names_the_closest_registered_ids():
    with pytest.raises(ConfigError, match=r"unknown environment 'CartPol-v1'; did you mean CartPole-v1"):
        make_vector_env("CartPol-v1", 2)


def test_bad_env_keyword_is_a_config_error():
    with pytest.raises(ConfigError, match="env_kwargs for 'r1lab/Maze-v0'.*colour"):
        make_vector_env("r1lab/Maze-v0", 2, env_kwargs={"colour": "red"})
