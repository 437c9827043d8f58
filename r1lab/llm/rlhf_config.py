"""Every setting of reward-model training (`r1lab reward-model`) and of RLHF-PPO (`r1lab rlhf`).

The defaults train and align the bundled tiny model on the tiny world's requests in minutes on
a laptop CPU; docs/reward-model.md and docs/rlhf.md explain each one and give the values the
best-known implementations use for billion-parameter models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from r1lab.llm.lora import LoraSettings
from r1lab.runs.config import require
from r1lab.scale.settings import scale_settings

BUILTIN_PAIR_SETS = ("helpful", "harmless")


@dataclass
class RewardModelConfig:
    # what to train, on what
    model: str = "tiny"  # the trunk: a causal LM ('tiny', a directory or a hub id); it gets a scalar head
    data: str = "helpful"  # 'helpful' or 'harmless' (the tiny world's pairs), or a JSONL of {prompt, chosen, rejected}
    eval_data: str | None = None  # a JSONL of held-out pairs; default: the built-in test split, or eval_share of `data`
    eval_share: float = 0.05
    train_pairs: int = 3000  # pairs drawn from a built-in set
    eval_pairs: int = 200
    template: Literal["chat", "plain"] = "chat"  # how a prompt is rendered before its response
    max_length: int = 256  # tokens of prompt + response + EOS; longer pairs are cut on the left of the response's end
    mismatched_pairs: float = 0.0  # extra pairs, per training pair, whose rejected answer is another prompt's chosen one
    # the objective
    margin_field: str = "margin"  # a column of per-pair margins, used where rows have it
    center_rewards_coef: float = 0.0  # reward centering: + coef * mean((r_c + r_r)^2); 0.01 is the usual value
    # optimisation
    steps: int = 0  # 0: as many as `epochs` take
    epochs: float = 1.0
    batch_size: int = 32  # pairs per micro-batch (chosen and rejected go through one forward: 2x rows)
    grad_accumulation: int = 1
    lr: float = 1e-3
    lr_schedule: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    # normalisation
    normalization_pairs: int = 500  # training pairs whose scores give the mean and std saved with the model
    # model
    device: str | None = None
    dtype: str | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False
    # recording
    seed: int = 0
    eval_every: int = 50
    checkpoint_every: int = 100  # steps; one is always written at the end and when a signal stops the run
    checkpoint_minutes: float = 10.0
    save_model: bool = True

    def __post_init__(self):
        require(bool(self.data), "data", "is required: 'helpful', 'harmless' or a JSONL of {prompt, chosen, rejected}")
        require(self.batch_size >= 1 and self.grad_accumulation >= 1, "batch_size", "and grad_accumulation must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(self.epochs > 0 or self.steps > 0, "epochs", "or steps must be > 0")
        require(0 <= self.eval_share < 1, "eval_share", "must be in [0, 1)")
        require(self.center_rewards_coef >= 0, "center_rewards_coef", "must be >= 0")
        require(self.train_pairs >= 1 and self.eval_pairs >= 0, "train_pairs", "must be >= 1 (eval_pairs >= 0)")
        require(self.mismatched_pairs >= 0, "mismatched_pairs", "must be >= 0")
        require(self.max_length >= 8, "max_length", "must be >= 8")
        require(self.normalization_pairs >= 1, "normalization_pairs", "must be >= 1")


@dataclass
@scale_settings  # + where it samples: backend, num_workers, ... (docs/scale.md)
class RLHFConfig:
    # the four models
    model: str = "tiny"  # the actor (policy), and the reference it starts as
    reward_model: str = ""  # a directory saved by `r1lab reward-model`: scores every prompt (or the others, below)
    safety_reward_model: str | None = None  # Llama 2's split: scores the prompts whose `safety_field` is true
    safety_field: str = "harmful"
    critic_init: Literal["reward_model", "policy"] = "reward_model"  # the critic's trunk and head start from...
    critic_model: str | None = None  # ...or from this directory (a reward model or a causal LM)
    shared_critic: bool = False  # one trunk with two heads: the policy's, plus a value head
    # prompts
    task: str = "general"  # a built-in task whose questions are the prompts
    dataset: str | None = None  # a JSONL of {"prompt", ...}: replaces `task`
    template: str = "chat"
    train_items: int = 5000
    # 1 collect
    prompts_per_step: int = 32
    samples_per_prompt: int = 1  # completions per prompt (the prompt's forward is shared by them)
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    # 2 score
    normalize_reward: bool = True  # (score - mean) / std with the reward model's saved statistics
    missing_eos_penalty: float = 1.0  # subtracted from the score of a completion that never ends (the EOS trick)
    beta: float = 0.1  # the KL coefficient: -beta * KL_t in each token's reward
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    kl_target: float | None = None  # set: Ziegler et al.'s adaptive beta holds the sequence KL near this (nats)
    kl_horizon: int = 10000  # samples over which the adaptive beta may change by about e^0.2
    measure_kl: bool = True  # with beta = 0, still build the reference to log the KL; false: no reference at all
    # 3 estimate
    gamma: float = 1.0
    lam: float = 0.95
    whiten_rewards: bool = False  # scale the per-token rewards by their std (not centred) before GAE
    # 4 improve
    steps: int = 120
    ppo_epochs: int = 4
    num_minibatches: int = 1  # optimiser steps per epoch; the batch's micro-batches are shuffled into them
    micro_batch_size: int = 64  # rows per forward/backward; a minibatch accumulates its micro-batches
    padding_free: bool = True  # pack each micro-batch's real tokens end to end: the same numbers, no padding computed
    clip_ratio: float = 0.2  # the policy's clip range [1 - eps, 1 + eps]
    clip_value: float | None = 0.2  # the value loss's clip range around the rollout's values; None: unclipped
    vf_coef: float = 0.1
    ent_coef: float = 0.0
    critic_warmup_steps: int = 0  # steps that train only the critic before the policy starts to move
    lr: float = 5e-5
    critic_lr: float | None = None  # default: lr
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = 1.0  # per model: the actor's and the critic's gradients are clipped apart
    # model
    device: str | None = None
    dtype: str | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False
    # recording
    seed: int = 0
    log_samples_every: int = 5
    checkpoint_every: int = 25  # steps; one is always written at the end and when a signal stops the run
    checkpoint_minutes: float = 10.0
    save_model: bool = True

    def __post_init__(self):
        require(self.prompts_per_step >= 1 and self.samples_per_prompt >= 1, "prompts_per_step",
                "and samples_per_prompt must be >= 1")
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require(self.steps >= 1, "steps", "must be >= 1")
        self.check_scale(learner=False)  # generation workers; the update runs in this process
        require(self.ppo_epochs >= 1, "ppo_epochs", "must be >= 1")
        require(self.num_minibatches >= 1, "num_minibatches", "must be >= 1")
        require(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        require(self.lr > 0 and (self.critic_lr is None or self.critic_lr > 0), "lr", "and critic_lr must be > 0")
        require(self.beta >= 0, "beta", "must be >= 0")
        require(self.kl_target is None or self.kl_target > 0, "kl_target", "must be > 0 (or unset for a fixed beta)")
        require(self.kl_horizon >= 1, "kl_horizon", "must be >= 1")
        require(0 < self.clip_ratio < 1, "clip_ratio", "must be in (0, 1)")
        require(self.clip_value is None or self.clip_value > 0, "clip_value", "must be > 0 (or null for no clipping)")
        require(0 <= self.gamma <= 1 and 0 <= self.lam <= 1, "gamma", "and lam must be in [0, 1]")
        require(self.temperature > 0, "temperature", "must be > 0 for sampling")
        require(self.vf_coef > 0, "vf_coef", "must be > 0: the critic learns from the value loss alone")
        require(self.critic_warmup_steps >= 0 and self.critic_warmup_steps < self.steps, "critic_warmup_steps",
                "must be in [0, steps)")
        require(self.missing_eos_penalty >= 0, "missing_eos_penalty", "must be >= 0")
        require(not (self.shared_critic and self.critic_model), "critic_model",
                "cannot be combined with shared_critic (the shared critic is the policy's own trunk)")

    @property
    def samples_per_step(self) -> int:
        return self.prompts_per_step * self.samples_per_prompt
