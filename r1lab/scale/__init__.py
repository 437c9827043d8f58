"""Scale-out: sampling workers and a data-parallel learner, in this process or on Ray.

    settings.py         ScaleSettings: the flat keys every training config inherits (backend, num_workers, ...)
    worker.py           the one worker interface (set_weights, sample, state, restore), versions, seeds
    rollout_worker.py   env-stepping workers of `r1lab train`, and how their shares merge
    sampling.py         generation workers of the LLM trainers (GRPO now, RLHF-PPO next): prompts
                        sharded by group, rewards computed where the samples are, shares merged
    learner.py          the data-parallel learner: this process's rank, gradient all-reduce, runs
    recipe.py           Recipe: an object that travels to a worker as the call that built it
    ray_workers.py      Ray: start or join a cluster, actors, versioned broadcast, redo on a lost worker
    ray_rollout.py      Ray: the collector of `r1lab train` on N actors
    ray_generation.py   Ray: the generation pool of the LLM trainers on N actors
    ray_learner.py      Ray Train: a trainer function run as N data-parallel TorchTrainer workers

Only the `ray_*.py` modules import Ray, and only a job whose backend is "ray" imports them; the
default backend runs everything in this process, exactly as r1lab ran before. docs/scale.md
describes the layout, what travels per step and where the bottleneck moves.
"""

import importlib

_HOMES = {"Recipe": "recipe", "RAY_MISSING": "settings", "ScaleSettings": "settings", "Shard": "worker",
          "StaleWeightsError": "worker", "WorkerLostError": "worker"}
__all__ = sorted(_HOMES)


def __getattr__(name: str):  # imported on first use, so that the config classes stay light for the CLI's help
    if name not in _HOMES:
        raise AttributeError(f"module 'r1lab.scale' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"r1lab.scale.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
