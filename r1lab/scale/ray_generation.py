"""The generation pool of the LLM trainers on Ray: N actors, each a policy copy that samples and
scores its share of every round's prompts (see sampling.py for the interface)."""

from __future__ import annotations

import time
from typing import Any

import ray
import torch

from r1lab.runs import ConfigError
from r1lab.scale.generation_worker import GenerationSpec, GenerationWorker
from r1lab.scale.ray_workers import WorkerGroup, connect
from r1lab.scale.sampling import merge_completions, shard_bounds, slice_payload
from r1lab.scale.worker import worker_seed


def trained_state(policy) -> dict[str, torch.Tensor]:
    """What the workers need of the learner's weights: every tensor, or only the trained ones when
    some are frozen (a LoRA policy's adapters), on the CPU."""
    trained = {name for name, p in policy.named_parameters() if p.requires_grad}
    state = policy.state_dict()
    if len(trained) < sum(1 for _ in policy.parameters()):
        state = {name: value for name, value in state.items() if name in trained}
    return {name: value.detach().to("cpu") for name, value in state.items()}


class RayGenerationPool:
    """`config.num_workers` GenerationWorker actors; weights pushed when the learner's version moves."""

    def __init__(self, config, policy, tokenizer, sampling, score, merge):
        try:
            ray.cloudpickle.dumps(score)
        except Exception as error:
            raise ConfigError(f"backend 'ray' sends the scorer to every generation worker, and this one cannot be "
                              f"pickled ({type(error).__name__}: {error}); pass r1lab.scale.Recipe(factory, ...), "
                              "which each worker builds again") from None
        self.ray_init_seconds = connect(config)
        device = "cuda" if config.gpus_per_worker > 0 else "cpu"
        threads = max(1, int(config.cpus_per_worker))
        spec = GenerationSpec(config.model, config.dtype, config.lora, sampling, score, device, threads)
        started = time.perf_counter()
        self.workers = WorkerGroup(GenerationWorker, [(spec, w) for w in range(config.num_workers)], config,
                                   num_gpus=config.gpus_per_worker)
        self.start_seconds = time.perf_counter() - started
        self.num_workers = config.num_workers
        self.policy, self.pad_id, self.seed, self.merge = policy, tokenizer.pad_token_id, config.seed, merge
        self.version: int | None = None
        self.round = 0
        self._metrics: dict[str, float] = {}

    def sync(self, version: int) -> float:
        """Send the policy's weights as `version` (one ray.put, by reference to every worker)."""
        started = time.perf_counter()
        self.workers.broadcast(trained_state(self.policy), version)
        self.version, self.round = version, 0
        return time.perf_counter() - started

    def sample(self, prompts: list[str], payload: Any, *, version: int = 0,
               group_size: int = 1) -> tuple[Any, Any, float]:
        sync_seconds = self.sync(version) if version != self.version else 0.0
        started = time.perf_counter()
        bounds = shard_bounds(len(prompts), group_size, len(self.workers))
        requests = [(prompts[a:b], slice_payload(payload, a, b), worker_seed(self.seed, w, version, self.round))
                    if b > a else None for w, (a, b) in enumerate(bounds)]
        self.round += 1
        shards = self.workers.sample(requests, version)
        sampled = time.perf_counter()
        completions = merge_completions([s.data[0] for s in shards], self.pad_id)
        scores = self.merge([s.data[1] for s in shards])
        self._add({"time/sync": sync_seconds, "time/sampling": sampled - started,
                   "time/worker_generation": max(s.seconds["generation"] for s in shards),
                   "time/worker_scoring": max(s.seconds["scoring"] for s in shards),
                   "time/merge": time.perf_counter() - sampled})
        return completions, scores, time.perf_counter() - started + sync_seconds

    def _add(self, seconds: dict[str, float]) -> None:
        for key, value in seconds.items():
            self._metrics[key] = self._metrics.get(key, 0.0) + value

    def metrics(self) -> dict[str, float]:
        """The step's sync / sampling / merge split (summed over its rounds); reset on reading."""
        metrics, self._metrics = {**self._metrics, "workers/redone": self.workers.redone}, {}
        return metrics

    def summary(self) -> dict[str, Any]:
        return {"backend": "ray", "num_workers": self.num_workers, "ray_init_seconds": self.ray_init_seconds,
                "workers_start_seconds": self.start_seconds, "workers_redone": self.workers.redone}

    def close(self) -> None:
        self.workers.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
