"""Sampling for the LLM trainers: one `sample` call for "generate these prompts, score them".

A trainer that samples completions (GRPO now, RLHF-PPO next) asks its pool once per round:

    pool = sampling_pool(config, policy, tokenizer, sampling, sampler, score)
    with pool:
        completions, scores, seconds = pool.sample(prompts, payload, version=updates, group_size=G)

    score(prompts, completions, payload_share) -> scores    the trainer's scorer, run where the samples are
    version                                               the learner's optimiser updates so far
    payload                                               per-prompt data the scorer needs: a list with
                                                          one entry per prompt, or a dict of such lists

`LocalSampler` (backend "local") is what the trainers always did: generate with the policy and the
trainer's seeded sampler, then score, in this process. `RayGenerationPool` (backend "ray",
ray_generation.py) shards the prompts by whole groups across N generation workers, each holding a
policy copy synced from the learner whenever `version` moves on; each worker generates with its own
seed for (run seed, worker, version, round) and scores its share; the shares come back in worker
order and merge into one batch (`merge_completions`, and the trainer's `merge` for the scores).
"""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import torch

from r1lab.llm.generation import Completions, generate


class LocalSampler:
    """Generation and scoring in this process, with the trainer's own sampler (today's path)."""

    def __init__(self, policy, tokenizer, sampling, sampler: torch.Generator, score):
        self.policy, self.tokenizer, self.sampling, self.sampler, self.score = policy, tokenizer, sampling, sampler, score

    def sample(self, prompts: list[str], payload: Any, *, version: int = 0,
               group_size: int = 1) -> tuple[Completions, Any, float]:
        """(completions, the scorer's result, generation seconds)."""
        started = time.perf_counter()
        self.policy.eval()
        completions = generate(self.policy, self.tokenizer, prompts, self.sampling, self.sampler)
        self.policy.train()
        seconds = time.perf_counter() - started
        return completions, self.score(prompts, completions, payload), seconds

    def metrics(self) -> dict[str, float]:
        """The pool's own figures since the last call (none in this process)."""
        return {}

    def summary(self) -> dict[str, Any]:
        """What the run's summary says about the pool (nothing in this process)."""
        return {}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sampling_pool(config, policy, tokenizer, sampling, sampler, score, merge=None):
    """The pool of `config.backend`: in this process, or generation workers on Ray. Inside a
    data-parallel learner, rank 0 samples and broadcasts what it sampled to the other ranks, so
    that every rank trains on the same batch. `merge(list of scores) -> scores` joins the workers'
    scores (default: `merge_reward_scores`, for `r1lab.rewards.score`'s triple)."""
    from r1lab.scale.learner import current_learner

    learner = current_learner()
    if learner.distributed and learner.rank > 0:
        return FollowerSampler(learner)
    if getattr(config, "backend", "local") == "ray":
        from r1lab.scale.ray_generation import RayGenerationPool

        pool = RayGenerationPool(config, policy, tokenizer, sampling, score, merge or merge_reward_scores)
    else:
        pool = LocalSampler(policy, tokenizer, sampling, sampler, score)
    return BroadcastingSampler(pool, learner) if learner.distributed else pool


class BroadcastingSampler:
    """Rank 0's pool in a data-parallel learner: samples, and sends the result to the other ranks."""

    def __init__(self, pool, learner):
        self.pool, self.learner = pool, learner

    def sample(self, prompts, payload, **options):
        return self.learner.broadcast(self.pool.sample(prompts, payload, **options))

    def metrics(self) -> dict[str, float]:
        return self.pool.metrics()

    def summary(self) -> dict[str, Any]:
        return self.pool.summary()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FollowerSampler(BroadcastingSampler):
    """The pool of a rank other than 0: what rank 0 sampled."""

    def __init__(self, learner):
        super().__init__(None, learner)

    def sample(self, prompts, payload, **options):
        return self.learner.broadcast(None)

    def metrics(self) -> dict[str, float]:
        return {}

    def summary(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- GRPO's scores


def text_scorer(score_completions):
    """GRPO's `score_completions(prompts, texts, fields)` as a pool scorer (picklable when it is)."""
    return partial(_score_texts, score_completions)


def _score_texts(score_completions, prompts: list[str], completions: Completions, fields: dict[str, list]):
    return score_completions(prompts, completions.texts, fields)


def merge_reward_scores(parts: list[tuple]) -> tuple:
    """The workers' `(rewards, metrics[, values by function])` joined as one batch would give them.

    Rewards and each function's values are concatenated in worker order. A function's mean and
    std are recomputed over the joined values (the formula of `r1lab.rewards.score`), failure
    counts add up, and any other metric is averaged with each worker's rows as its weight."""
    if len(parts) == 1:
        return parts[0]
    rewards = [r for part in parts for r in part[0]]
    by_function: dict[str, list] = {}
    for part in parts:
        for name, values in (part[2] if len(part) > 2 else {}).items():
            by_function.setdefault(name, []).extend(values)
    metrics: dict[str, float] = {}
    rows = [len(part[0]) for part in parts]
    for key in dict.fromkeys(k for part in parts for k in part[1]):
        present = [(part[1][key], n) for part, n in zip(parts, rows) if key in part[1]]
        if key.startswith("reward_failures/"):
            metrics[key] = sum(value for value, _ in present)
        else:
            metrics[key] = sum(value * n for value, n in present) / max(1, sum(n for _, n in present))
    for name, values in by_function.items():
        applicable = [v for v in values if v is not None]
        if applicable:
            mean = sum(applicable) / len(applicable)
            metrics[f"rewards/{name}/mean"] = mean
            metrics[f"rewards/{name}/std"] = math.sqrt(sum((v - mean) ** 2 for v in applicable) / len(applicable))
    return (rewards, metrics, by_function) if len(parts[0]) > 2 else (rewards, metrics)


def item_scorer(scorer):
    """A `scorer(items, prompts, completions) -> (scores, metrics)` (RLHF-PPO's: a reward model, or
    rules) as a pool scorer whose payload is the items; join its shares with `merge_scores`."""
    return partial(_score_items, scorer)


def _score_items(scorer, prompts: list[str], completions: Completions, items: list):
    return scorer(items, prompts, completions)


def merge_scores(parts: list[tuple]) -> tuple:
    """`(scores (B,) tensor, metrics)` parts joined: scores concatenated, metrics row-weighted (RLHF's scorers)."""
    if len(parts) == 1:
        return parts[0]
    rows = [len(part[0]) for part in parts]
    keys = dict.fromkeys(k for part in parts for k in part[1])
    metrics = {key: sum(part[1][key] * n for part, n in zip(parts, rows) if key in part[1])
               / max(1, sum(n for part, n in zip(parts, rows) if key in part[1])) for key in keys}
    return torch.cat([torch.as_tensor(part[0]) for part in parts]), metrics


# ---------------------------------------------------------------- shards


def shard_bounds(rows: int, group_size: int, workers: int) -> list[tuple[int, int]]:
    """(start, end) rows of each worker's share: whole groups, as even as they divide, in order."""
    groups = rows // group_size
    return [(groups * w // workers * group_size, groups * (w + 1) // workers * group_size) for w in range(workers)]


def slice_payload(payload: Any, start: int, end: int) -> Any:
    """Rows start:end of a per-prompt payload (a list, or a dict of lists)."""
    if isinstance(payload, dict):
        return {key: values[start:end] for key, values in payload.items()}
    return payload[start:end]


def merge_completions(parts: list[Completions], pad_id: int) -> Completions:
    """The workers' completions as one batch: prompts left-padded and completions right-padded to
    the widest part, rows in worker order. Padding is masked everywhere it is read."""
    if len(parts) == 1:
        return parts[0]
    prompt_width = max(p.prompt_ids.shape[1] for p in parts)
    width = max(p.completion_ids.shape[1] for p in parts)

    def pad(tensor, to, left, value=0):
        missing = to - tensor.shape[1]
        return torch.nn.functional.pad(tensor, (missing, 0) if left else (0, missing), value=value)

    return Completions(
        prompt_ids=torch.cat([pad(p.prompt_ids, prompt_width, True, pad_id) for p in parts]),
        prompt_mask=torch.cat([pad(p.prompt_mask, prompt_width, True) for p in parts]),
        completion_ids=torch.cat([pad(p.completion_ids, width, False, pad_id) for p in parts]),
        completion_mask=torch.cat([pad(p.completion_mask, width, False) for p in parts]),
        logprobs=torch.cat([pad(p.logprobs, width, False) for p in parts]),
        texts=[t for p in parts for t in p.texts],
        truncated=torch.cat([p.truncated for p in parts]),
    )
