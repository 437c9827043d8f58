"""What every policy-gradient job does around its loop: set up, resume, record, evaluate, summarise.

An algorithm file keeps its five steps (collect, score, estimate, improve, record) in view and
hands the rest to a `Job`:

    job = Job("ppo", config, run_dir, resume=resume, quiet=quiet)   # seeds, envs, policy, run dir
    ... build the optimiser ...
    extra = job.restore({"optimizer": optimizer}) if resume else {}
    with job.progress():
        for iteration in job.remaining_iterations():
            ... collect, score, estimate, improve ...
            job.record(iteration, rollout, stats, {"optimizer": optimizer}, extra)
    return job.finish()

A checkpoint holds everything the next iteration reads: parameters, optimiser moments, the
collector (current observations, unfinished episodes, normalisers, the pickled envs), the numpy
Generator that samples actions and the global RNGs. A resumed run therefore computes exactly what
the uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r1lab.policy_gradient.evaluate import evaluate_policy
from r1lab.policy_gradient.policies import ActorCritic
from r1lab.policy_gradient.rollout import Rollout, RolloutCollector, check_spaces, make_vector_env
from r1lab.runs import ProgressBar, Run, rng_state, seed_everything, set_rng_state

EVAL_SEED_OFFSET = 10_000  # evaluation episodes never reuse the training resets' seeds


class Job:
    """Seeding, environments, policy, run directory, checkpoints, metrics and the final summary."""

    def __init__(self, name: str, config: Any, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
                 quiet: bool = False):
        self.name, self.config, self.quiet = name, config, quiet
        torch.set_num_threads(config.torch_threads)
        seed_everything(config.seed)
        if config.backend == "ray":  # env-stepping Ray actors, each with its share of the envs (r1lab.scale)
            from r1lab.scale.ray_rollout import RayRolloutCollector

            self.collector = RayRolloutCollector(config)
            action_space = self.collector.action_space
        else:
            envs = make_vector_env(config.env_id, config.num_envs, config.vectorization, config.env_kwargs)
            check_spaces(envs.single_observation_space, envs.single_action_space, config.env_id)
            self.collector = RolloutCollector(envs, config.steps_per_env, config.gamma, config.normalize_obs,
                                              config.normalize_reward)
            action_space = envs.single_action_space
        self.collector.reset(seed=config.seed)
        self.policy = ActorCritic(self.collector.encode.size, action_space, config.hidden_sizes,
                                  config.activation, config.shared_network, config.log_std_init)
        self.action_rng = np.random.default_rng(config.seed)  # the only randomness of the rollouts' actions
        self.run = Run(run_dir, name, config, resume=resume, overwrite=overwrite, tensorboard=config.tensorboard)
        if config.tensorboard:
            importlib.import_module("torch.utils.tensorboard")  # its slow first import, paid before the clock starts
        self.iterations = config.iterations
        self.start_iteration = 0
        self.exact_resume: bool | None = None
        self.seconds = {"collect": 0.0, "estimate": 0.0, "improve": 0.0, "record": 0.0}
        self.seconds_before = 0.0  # training time of the segments before a resume
        self.started = time.perf_counter()
        self._bar: ProgressBar | None = None
        self._last_saved = -1

    # ---- resume -----------------------------------------------------------------------------
    def restore(self, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
        """Load the newest checkpoint into the policy, optimisers, collector and RNGs; returns the
        algorithm's extra state (e.g. PPO's adaptive beta)."""
        state = self.run.load_checkpoint()
        self.policy.load_state_dict(state["policy"])
        for key, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.start_iteration = state["iteration"]
        self.exact_resume = self.collector.load_state_dict(state["collector"],
                                                           reset_seed=self.config.seed + 7919 * self.start_iteration)
        self.action_rng.bit_generator.state = state["action_rng"]
        set_rng_state(state["rng"])
        self.seconds_before = state["seconds"]
        self.seconds.update(state["phase_seconds"])
        self._last_saved = self.start_iteration - 1
        return state["extra"]

    # ---- the loop ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def progress(self):
        batch = self.config.batch_size
        with ProgressBar(self.iterations * batch, f"{self.name} {self.config.env_id}", enabled=not self.quiet) as bar:
            bar.advance(self.start_iteration * batch)
            self._bar = bar
            self.started = time.perf_counter()
            try:
                yield bar
            except BaseException:
                if self.config.backend == "ray":
                    self.collector.close()  # the Ray workers go with the run, however it ends
                raise

    def remaining_iterations(self) -> range:
        return range(self.start_iteration, self.iterations)

    @contextlib.contextmanager
    def timed(self, phase: str):
        """Adds the block's wall time to `phase` (collect, estimate, improve): where the time goes."""
        started = time.perf_counter()
        yield
        self.seconds[phase] += time.perf_counter() - started

    @property
    def training_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def record(self, iteration: int, rollout: Rollout, stats: dict[str, float],
               optimizers: dict[str, torch.optim.Optimizer], extra: dict[str, Any] | None = None) -> None:
        """Step 5: one metrics line per iteration, the progress bar, and a checkpoint when due."""
        started = time.perf_counter()
        env_steps = (iteration + 1) * self.config.batch_size
        recent = self.collector.recent_returns
        metrics: dict[str, Any] = {"env_steps": env_steps, "episodes": self.collector.episodes}
        if recent:
            metrics["episode_return"] = float(np.mean(recent))
            metrics["episode_length"] = float(np.mean(self.collector.recent_lengths))
        metrics.update(stats)
        metrics["steps_per_second"] = env_steps / max(self.training_seconds, 1e-9)
        metrics.update({f"time/{phase}": seconds for phase, seconds in self.seconds.items()})
        if self.config.backend == "ray":  # the collect time split into sync, sampling and merge
            metrics.update(self.collector.metrics())
        self.run.log(env_steps, metrics)
        if self._bar is not None:
            self._bar.advance(rollout.steps, info=f"return {metrics['episode_return']:.1f}" if recent else "")
        if self.run.checkpoint_due(iteration + 1, last=iteration + 1 == self.iterations):
            self.save(iteration, optimizers, extra or {})
        self.seconds["record"] += time.perf_counter() - started
        self.run.stop_if_requested(env_steps)

    def save(self, iteration: int, optimizers: dict[str, torch.optim.Optimizer], extra: dict[str, Any]) -> None:
        self.run.save_checkpoint((iteration + 1) * self.config.batch_size, {
            "iteration": iteration + 1,
            "policy": self.policy.state_dict(),
            "optimizers": {key: optimizer.state_dict() for key, optimizer in optimizers.items()},
            "collector": self.collector.state_dict(),
            "action_rng": self.action_rng.bit_generator.state,
            "rng": rng_state(),
            "extra": extra,
            "seconds": self.training_seconds,
            "phase_seconds": dict(self.seconds),
        })
        self._last_saved = iteration

    # ---- the end ------------------------------------------------------------------------------
    def finish(self, extra_summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """Close the envs, evaluate the deterministic policy, write and return summary.json."""
        wall_seconds = self.training_seconds
        self.collector.close()
        env_steps = self.iterations * self.config.batch_size
        eval_started = time.perf_counter()
        evaluation = evaluate_policy(self.policy, self.config.env_id, self.config.eval_episodes,
                                     env_kwargs=self.config.env_kwargs, seed=self.config.seed + EVAL_SEED_OFFSET,
                                     obs_stats=self.collector.state_dict()["obs_normalizer"])
        recent = self.collector.recent_returns
        summary = {
            "algorithm": self.name,
            "env_id": self.config.env_id,
            "seed": self.config.seed,
            "env_steps": env_steps,
            "iterations": self.iterations,
            "episodes": self.collector.episodes,
            "wall_seconds": wall_seconds,
            "steps_per_second": env_steps / wall_seconds,
            "eval_return_mean": evaluation.mean,
            "eval_return_std": evaluation.std,
            "eval_episodes": len(evaluation.returns),
            "eval_seconds": time.perf_counter() - eval_started,
            "train_return_recent": float(np.mean(recent)) if recent else None,
            "seconds_by_phase": dict(self.seconds),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "resumed": self.exact_resume is not None,
            "exact_resume": self.exact_resume,
            **(self.collector.summary() if self.config.backend == "ray" else {}),
            **(extra_summary or {}),
        }
        summary = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in summary.items()}
        self.run.write_summary(summary)
        self.run.close()
        return summary
