"""The collector of `r1lab train` on Ray: N env-stepping actors in place of the in-process vector env.

`RayRolloutCollector` has the in-process `RolloutCollector`'s interface (`reset`, `collect`,
`state_dict`, `load_state_dict`, `close`, the episode counters), so `Job` and the three trainers
use it unchanged. Each `collect` is one iteration of the learner:

    sync      the actor's weights (a NumpyPolicy) and the global normaliser statistics, tagged with
              the weights version; they travel with each worker's sample call, by value when
              they are small (under Ray's 100 KB inline limit), else one `ray.put` by reference
    sample    every worker steps its share of the envs T times; shards come back in worker order
    merge     the shards side by side (T, N, ...), each checked to carry the current version;
              the normalisers' increments merged into the global statistics
"""

from __future__ import annotations

import time
from typing import Any

from r1lab.policy_gradient.rollout import RECENT_EPISODES, ObservationEncoder, Rollout, check_spaces, make_env
from r1lab.runs import ConfigError
from r1lab.scale.ray_workers import WorkerGroup, connect
from r1lab.scale.rollout_worker import RolloutWorker, merge_rollouts, merge_stats, rollout_tensors


class RayRolloutCollector:
    """`config.num_workers` RolloutWorker actors, each with num_envs / num_workers envs."""

    def __init__(self, config):
        from collections import deque

        if config.num_envs % config.num_workers:
            raise ConfigError(f"'num_envs' = {config.num_envs} must be a multiple of num_workers = "
                              f"{config.num_workers}: each worker steps an equal share of the envs")
        template = make_env(config.env_id, config.env_kwargs)  # fail here, in this process, on a bad env
        self.observation_space, self.action_space = template.observation_space, template.action_space
        template.close()
        check_spaces(self.observation_space, self.action_space, config.env_id)
        self.encode = ObservationEncoder(self.observation_space)
        self.num_envs, self.steps_per_env = config.num_envs, config.steps_per_env
        self.ray_init_seconds = connect(config)
        started = time.perf_counter()
        self.workers = WorkerGroup(RolloutWorker, [(config, w) for w in range(config.num_workers)], config)
        self.start_seconds = time.perf_counter() - started
        self.num_workers = config.num_workers
        # the global statistics start from what every worker's first reset observed
        self.obs_stats = self._initial_stats("obs_normalizer") if config.normalize_obs else None
        self.reward_stats = self._initial_stats("reward_normalizer") if config.normalize_reward else None
        self.version = -1  # the learner's updates so far, when the weights were last sent
        self.recent_returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.recent_lengths: deque[int] = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0
        self.seconds = {"sync": 0.0, "sampling": 0.0, "merge": 0.0}
        self.last_seconds = dict(self.seconds)

    def _stats(self, worker: int, name: str) -> dict | None:
        collector_state = self.workers.states[worker]["collector"]
        stats = collector_state[name]
        return None if stats is None else (stats["stats"] if name == "reward_normalizer" else stats)

    def _initial_stats(self, name: str) -> dict:
        merged = self._stats(0, name)
        for worker in range(1, len(self.workers)):
            merged = merge_stats(merged, self._stats(worker, name))
        return merged

    def reset(self, seed: int) -> None:
        """The workers reset their envs at construction with the seeds of `seed` (the job's seed)."""

    def collect(self, policy, rng=None) -> Rollout:
        """One iteration's rollout of every env with `policy` (a NumpyPolicy); `rng` is unused:
        each worker samples actions from its own Generator."""
        started = time.perf_counter()
        self.version += 1
        self.workers.broadcast({"policy": policy, "obs_stats": self.obs_stats, "reward_stats": self.reward_stats},
                               self.version)
        synced = time.perf_counter()
        shards = self.workers.sample([self.version] * len(self.workers), self.version, method="sample_arrays")
        sampled = time.perf_counter()
        rollout = merge_rollouts([rollout_tensors(shard.data[0]) for shard in shards])
        self.obs_stats = self._merged(shards, "obs", "obs_normalizer", self.obs_stats)
        self.reward_stats = self._merged(shards, "reward", "reward_normalizer", self.reward_stats)
        self.recent_returns.extend(rollout.episode_returns)
        self.recent_lengths.extend(rollout.episode_lengths)
        self.episodes += len(rollout.episode_returns)
        finished = time.perf_counter()
        self.last_seconds = {"sync": synced - started, "sampling": sampled - synced, "merge": finished - sampled}
        for phase, seconds in self.last_seconds.items():
            self.seconds[phase] += seconds
        return rollout

    def _merged(self, shards, key: str, name: str, current: dict | None) -> dict | None:
        """Worker 0's statistics (the global ones plus what it saw, folded in step by step) merged
        with the other workers' increments."""
        if current is None:
            return None
        merged = self._stats(0, name)
        for shard in shards[1:]:
            merged = merge_stats(merged, shard.data[1][key])
        return merged

    def metrics(self) -> dict[str, float]:
        """This iteration's split of the collect time, and the shares redone after a worker died."""
        return {**{f"time/{phase}": seconds for phase, seconds in self.last_seconds.items()},
                "workers/redone": self.workers.redone}

    def summary(self) -> dict[str, Any]:
        return {"backend": "ray", "num_workers": self.num_workers, "ray_init_seconds": self.ray_init_seconds,
                "workers_start_seconds": self.start_seconds, "scale_seconds": dict(self.seconds),
                "workers_redone": self.workers.redone}

    # ---- checkpoint state ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"workers": list(self.workers.states), "version": self.version,
                "obs_normalizer": self.obs_stats, "reward_stats": self.reward_stats,
                "recent_returns": list(self.recent_returns), "recent_lengths": list(self.recent_lengths),
                "episodes": self.episodes}

    def load_state_dict(self, state: dict[str, Any], reset_seed: int) -> bool:
        if "workers" not in state or len(state["workers"]) != len(self.workers):
            raise ConfigError("the checkpoint's collector was not written by this backend and number of workers; "
                              "resume it with the backend and num_workers it ran with")
        exact = self.workers.restore(state["workers"], reset_seed)
        self.version = state["version"]
        self.obs_stats, self.reward_stats = state["obs_normalizer"], state["reward_stats"]
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.extend(state["recent_lengths"])
        self.episodes = state["episodes"]
        return all(exact)

    def close(self) -> None:
        self.workers.close()
