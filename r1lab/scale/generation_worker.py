"""A generation worker: a copy of the policy that samples and scores its share of a step's prompts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from r1lab.llm.generation import SamplingSettings, generate
from r1lab.scale.worker import Shard, Worker


@dataclass
class GenerationSpec:
    """What a generation worker is built from: the model as the trainer loads it (name, dtype,
    LoRA), the sampling settings, and the scorer (usually a `Recipe`, rebuilt in the worker)."""

    model: str
    dtype: str | None
    lora: Any
    sampling: SamplingSettings
    score: Any
    device: str = "cpu"
    threads: int = 1


class GenerationWorker(Worker):
    def __init__(self, spec: GenerationSpec, index: int):
        from r1lab.llm.loading import load_model

        super().__init__(index)
        torch.set_num_threads(spec.threads)
        loaded = load_model(spec.model, device=spec.device, dtype=spec.dtype, lora=spec.lora)
        self.model, self.tokenizer, self.device = loaded.policy.eval(), loaded.tokenizer, loaded.device
        self.sampling, self.score = spec.sampling, spec.score

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """The learner's trained tensors (all of them, or a LoRA policy's adapters alone)."""
        self.model.load_state_dict(state, strict=False)

    def sample(self, request: tuple[list[str], Any, int]) -> Shard:
        """request: (prompts, payload, seed). Generates with a generator seeded `seed` (a redone
        share draws the same tokens), then scores where the completions are."""
        prompts, payload, seed = request
        started = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(seed)
        completions = generate(self.model, self.tokenizer, prompts, self.sampling, generator)
        completions = type(completions)(*(value.cpu() if isinstance(value, torch.Tensor) else value
                                          for value in vars(completions).values()))
        generated = time.perf_counter()
        self._fault_point("between generation and scoring")
        scores = self.score(prompts, completions, payload)
        return Shard(self.index, self.version, (completions, scores), None,
                     {"generation": generated - started, "scoring": time.perf_counter() - generated})
