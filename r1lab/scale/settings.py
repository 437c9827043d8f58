"""Where a training job runs: in this process (the default) or on Ray, and with how many workers.

Every training config carries `ScaleSettings`' fields after its own (`@scale_settings`), so they
are flat keys of every job:

    r1lab train ppo --set backend=ray --set num_workers=2
    r1lab grpo --set backend=ray --set num_workers=4 --set ray_address=auto
    r1lab sft --data pairs.jsonl --set backend=ray --set learner_workers=2

Nothing here imports Ray: the Ray backend's modules (`r1lab/scale/ray_*.py`) are imported only
when `backend` is "ray", and a missing extra stops the job with one line before it starts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import typing
from dataclasses import dataclass
from typing import Literal

from r1lab.runs.config import ConfigError, require

RAY_MISSING = "backend 'ray' needs the ray extra: pip install 'r1lab[ray]'"


@dataclass
class ScaleSettings:
    """Where the job's sampling and learning run.

    backend           "local": everything in this process, as r1lab always ran (bit-identical results);
                      "ray": sampling workers as Ray actors, and optionally a data-parallel learner
    num_workers       sampling workers: env-stepping workers (`train`) or generation workers (GRPO),
                      each with its own share of the envs or prompts and its own seed (seed + index)
    ray_address       None: start a local Ray with `ray_cpus` CPUs and `object_store_mb` of object store;
                      "auto" or "HOST:PORT": join a running cluster (`ray start --head`)
    ray_cpus          CPUs the local Ray may schedule on; None: the cores this process may use
    object_store_mb   the local Ray's object store (Ray's default is 30 % of RAM)
    cpus_per_worker   CPUs reserved per sampling worker (fractions let more workers than cores run)
    gpus_per_worker   GPUs per generation worker (fractions share one GPU)
    max_restarts      how often Ray restarts a worker that died; its share of the step is redone
    learner_workers   1: the learner is this process; N > 1: a data-parallel learner of N Ray Train
                      workers (gloo on CPU, nccl on GPU), for SFT and the GRPO update
    learner_cpus      CPUs reserved per learner worker
    learner_use_gpu   one GPU per learner worker; None: when the cluster has GPUs
    """

    backend: Literal["local", "ray"] = "local"
    num_workers: int = 1
    ray_address: str | None = None
    ray_cpus: int | None = None
    object_store_mb: int = 256
    cpus_per_worker: float = 0.5
    gpus_per_worker: float = 0.0
    max_restarts: int = 3
    learner_workers: int = 1
    learner_cpus: float = 0.5
    learner_use_gpu: bool | None = None

    def check_scale(self, *, sampling_workers: bool = True, learner: bool = True) -> None:
        """Range checks, and the one line that names the missing extra. A job without sampling
        workers (SFT) or without a data-parallel learner (the policy-gradient jobs) says so."""
        require(self.num_workers >= 1, "num_workers", f"must be >= 1, got {self.num_workers}")
        require(self.learner_workers >= 1, "learner_workers", f"must be >= 1, got {self.learner_workers}")
        require(self.cpus_per_worker >= 0 and self.gpus_per_worker >= 0, "cpus_per_worker",
                "and gpus_per_worker must be >= 0")
        require(self.learner_cpus >= 0, "learner_cpus", "must be >= 0")
        require(self.max_restarts >= 0, "max_restarts", "must be >= 0")
        require(self.object_store_mb >= 80, "object_store_mb", "must be >= 80 (Ray's minimum is 75 MB)")
        require(self.ray_cpus is None or self.ray_cpus >= 1, "ray_cpus", "must be >= 1 or null")
        if self.backend == "local":
            require(self.num_workers == 1, "num_workers", "> 1 needs backend=ray (the local backend samples in "
                    "this process)")
            require(self.learner_workers == 1, "learner_workers", "> 1 needs backend=ray")
        if not sampling_workers:
            require(self.num_workers == 1, "num_workers", "does not apply to this job: it samples nothing; "
                    "use learner_workers for a data-parallel learner")
        if not learner:
            require(self.learner_workers == 1, "learner_workers", "does not apply to this job: its update takes "
                    "milliseconds on one process; num_workers scales its sampling")
        if self.backend == "ray" and importlib.util.find_spec("ray") is None:
            raise ConfigError(RAY_MISSING)

    @property
    def local_ray_cpus(self) -> int:
        """The CPUs a local Ray is started with: never Ray's own reading of the machine, which can
        miss a container's limit."""
        if self.ray_cpus is not None:
            return self.ray_cpus
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1


def scale_settings(cls):
    """Class decorator, under `@dataclass`: the job's config gets ScaleSettings' fields after its own
    (its own keys stay first in config.yaml, the help and the list of valid keys) and its checks.
    The config's `__post_init__` calls `self.check_scale(...)`."""
    hints = typing.get_type_hints(ScaleSettings)
    annotations = cls.__dict__.get("__annotations__", {})
    for f in dataclasses.fields(ScaleSettings):
        annotations[f.name] = hints[f.name]
        setattr(cls, f.name, f.default)
    cls.__annotations__ = annotations
    for name in ("check_scale", "local_ray_cpus"):
        setattr(cls, name, ScaleSettings.__dict__[name])
    return cls


def scale_of(config) -> dict:
    """A config's scale settings as keyword arguments, to hand on to the trainer configs a pipeline
    builds (`GRPOConfig(..., **scale_of(config))`)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(ScaleSettings)}
