"""Every setting of GRPO, with the defaults that run the R1-Zero job on the bundled tiny model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from r1lab.llm.lora import LoraSettings
from r1lab.runs.config import require
from r1lab.scale.settings import scale_settings

LOSS_TYPES = {  # the user-facing name -> the aggregation mode of r1lab.core.aggregate_loss
    "grpo": "sequence_mean",
    "bnpo": "token_mean",
    "dapo": "token_mean",
    "dr_grpo": "sequence_sum_over_max_length",
}


@dataclass
@scale_settings  # + where it runs: backend, num_workers, learner_workers, ... (docs/scale.md)
class GRPOConfig:
    # what to train, on what
    model: str = "tiny"
    task: str = "arithmetic"
    dataset: str | None = None  # a JSONL file of {"prompt", "answer", ...}; replaces `task`
    template: str = "r1-zero"
    rewards: list[str] = field(default_factory=lambda: ["accuracy", "format"])
    reward_weights: list[float] | None = None
    reward_timeout: float = 10.0
    train_items: int = 20000
    # sampling
    group_size: int = 8
    prompts_per_step: int = 16
    max_new_tokens: int = 160
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    # the objective
    steps: int = 100
    num_iterations: int = 1  # mu: optimisation passes over each batch
    loss_type: Literal["grpo", "bnpo", "dapo", "dr_grpo"] = "grpo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    clip_low: float = 0.2
    clip_high: float = 0.2  # DAPO's clip-higher: 0.28
    beta: float = 0.0  # KL weight; 0 never builds the reference model
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    ref_reset_every: int = 0  # copy the policy into the reference every N steps (R1-Zero: 400)
    mask_truncated: bool = False  # completions that hit max_new_tokens get no gradient
    dynamic_sampling: bool = False  # DAPO: drop groups with equal rewards, sample more prompts
    max_sampling_rounds: int = 3
    overlong_buffer: int = 0  # DAPO's soft over-long punishment over the last N tokens before the limit
    overlong_penalty: float = 1.0
    # optimisation
    lr: float = 1e-4
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.99)
    max_grad_norm: float = 1.0
    micro_batch_size: int = 64  # completions per forward/backward; the step's batch is accumulated
    # model
    device: str | None = None
    dtype: str | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False
    # recording
    seed: int = 0
    log_samples_every: int = 10
    checkpoint_every: int = 25  # steps; one is always written at the end and when a signal stops the run
    checkpoint_minutes: float = 10.0  # and once this long has passed since the last one
    save_model: bool = True

    def __post_init__(self):
        self.check_scale()
        require(self.group_size >= 2, "group_size", "must be >= 2: group-relative advantages compare "
                "completions of the same prompt, and a group of 1 has nothing to compare with")
        require(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1")
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require(self.steps >= 1, "steps", "must be >= 1")
        require(self.num_iterations >= 1, "num_iterations", "must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.beta >= 0, "beta", "must be >= 0")
        require(0 <= self.clip_low < 1 and self.clip_high >= 0, "clip_low", "must be in [0, 1), clip_high >= 0")
        require(self.temperature > 0, "temperature", "must be > 0 for sampling")
        require(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        require(0 <= self.overlong_buffer < self.max_new_tokens, "overlong_buffer", "must be in [0, max_new_tokens)")
        require(len(self.rewards) > 0, "rewards", "needs at least one reward function")
        # GRPO puts the KL in the loss; k1's gradient there is beta * grad log pi, whose expectation
        # under pi is zero: it would not pull the policy toward the reference at all
        require(not (self.beta > 0 and self.kl_estimator == "k1"), "kl_estimator",
                "'k1' cannot be the KL term of the GRPO loss: its gradient, beta * grad log pi, is zero in "
                "expectation, so it does not regularise; use 'k3' (the GRPO paper's) or 'k2'. k1 belongs in "
                "the reward, as RLHF-PPO uses it")
        # the reference is a plain copy of the model; a LoRA policy's weights do not load into it
        require(not (self.ref_reset_every and self.lora.rank and self.beta > 0), "ref_reset_every",
                "cannot be combined with LoRA (lora.rank > 0) yet: set it to 0 or train without LoRA")

    @property
    def aggregation(self) -> str:
        return LOSS_TYPES[self.loss_type]
