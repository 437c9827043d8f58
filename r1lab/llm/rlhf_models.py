"""The four models of RLHF with PPO, built for a run: the actor (policy), its frozen reference,
the critic (a model of its own, or a value head on the actor's trunk), and the reward model,
which lives in the scorer (`reward_model_scorer`; `rule_scorer` puts rule rewards in its place).
The trainer that uses them is `r1lab.llm.rlhf`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from r1lab.core import categorical_entropy
from r1lab.llm.generation import Completions
from r1lab.llm.grpo import trimmed
from r1lab.llm.loading import load_model, load_tokenizer
from r1lab.llm.logprobs import token_logprobs
from r1lab.llm.reward_model import RewardModel, model_memory_mb
from r1lab.llm.rlhf_config import RLHFConfig
from r1lab.llm.value_model import HeadRecorder, ValueHead, critic_values, hidden_size, load_critic
from r1lab.runs import ConfigError
from r1lab.tasks.base import TaskItem

# score(items, prompts, completions) -> (scores (B,), metrics): what the reward model (or a rule) says
Scorer = Callable[[list[TaskItem], list[str], Completions], tuple[torch.Tensor, dict]]


# ---------------------------------------------------------------- the four models


@dataclass
class Models:
    """The actor (policy), its frozen reference, and the critic: a separate model or a value head
    on the policy's trunk (`value_head`). The reward model lives in the scorer."""

    policy: Any
    tokenizer: Any
    reference: Any | None  # None with LoRA (the policy with its adapters disabled), or when no KL is wanted
    critic: Any | None  # None when shared
    value_head: ValueHead | None  # the shared critic's head
    device: torch.device
    recorder: HeadRecorder | None = None
    with_reference: bool = True  # False: beta = 0 and measure_kl off, so no reference forward at all
    padding_free: bool = False  # the training forwards pack the rows' real tokens (`r1lab.llm.packing`)

    @property
    def lora(self) -> bool:
        return hasattr(self.policy, "disable_adapter")

    def critic_parameters(self) -> list[torch.nn.Parameter]:
        module = self.value_head if self.critic is None else self.critic
        return [p for p in module.parameters() if p.requires_grad]

    def policy_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.policy.parameters() if p.requires_grad]

    def memory_mb(self) -> dict[str, float]:
        return {"memory/actor_mb": model_memory_mb(self.policy),
                "memory/critic_mb": model_memory_mb(self.critic if self.critic is not None else self.value_head),
                "memory/reference_mb": model_memory_mb(self.reference) if self.reference is not None else 0.0}

    @torch.no_grad()
    def reference_logprobs(self, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature: float):
        """log pi_ref of the completion tokens (B, T): the frozen copy, or with LoRA the base model
        under the adapters, which is the policy before training without a second copy of the weights."""
        if not self.with_reference:
            raise ValueError("this run has no reference model (beta = 0 and measure_kl is false)")
        if self.reference is not None:
            return token_logprobs(self.reference, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                  temperature=temperature, padding_free=self.padding_free)[0]
        with self.policy.disable_adapter():
            return token_logprobs(self.policy, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                  temperature=temperature, padding_free=self.padding_free)[0]

    def actor_forward(self, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature: float,
                      with_entropy: bool = True, entropy_grad: bool = False, value_grad: bool = True):
        """Log-probs (B, T) of the completion tokens; their entropy (None without `with_entropy`;
        with a gradient when `entropy_grad`, for the bonus); and, for a shared critic, V_t from the
        same forward (`value_grad=False` keeps the value loss out of the trunk: the critic's warm-up)."""
        if self.value_head is None and not entropy_grad:
            logprobs, entropy = token_logprobs(self.policy, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                               temperature=temperature, with_entropy=with_entropy,
                                               padding_free=self.padding_free)
            return logprobs, entropy, None
        with self.recorder.recording():
            # one forward over whole rows, so the head sees each row's states in one call
            logprobs, entropy = token_logprobs(self.policy, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                               temperature=temperature, with_entropy=with_entropy and not entropy_grad,
                                               share_prompts=False, padding_free=self.padding_free)
        (head_inputs,), (head_outputs,) = self.recorder.inputs, self.recorder.outputs
        if entropy_grad:
            entropy = categorical_entropy(head_outputs[:, :-1].float() / temperature) * completion_mask
        values = None
        if self.value_head is not None:
            states = head_inputs[:, :-1]
            values = self.value_head(states if value_grad else states.detach()) * completion_mask
        return logprobs, entropy, values

    def values(self, prompt_ids, prompt_mask, completion_ids, completion_mask) -> torch.Tensor:
        return critic_values(self.critic, prompt_ids, prompt_mask, completion_ids, completion_mask, self.padding_free)


def disable_dropout(model) -> None:
    """PPO's ratio must be 1 before the first update: no dropout in the actor or the critic (as TRL does)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def build_models(config: RLHFConfig) -> Models:
    """Load the actor (and a frozen reference unless LoRA gives one for free) and the critic."""
    lora = config.lora.rank > 0
    with_reference = config.beta > 0 or config.kl_target is not None or config.measure_kl
    loaded = load_model(config.model, reference=with_reference and not lora, device=config.device, dtype=config.dtype,
                        lora=config.lora, gradient_checkpointing=config.gradient_checkpointing)
    policy = loaded.policy
    disable_dropout(policy)
    critic = value_head = recorder = None
    if config.shared_critic:
        value_head = ValueHead(hidden_size(policy)).to(loaded.device)
    else:
        from_reward_model = config.critic_model is None and config.critic_init == "reward_model"
        source = config.critic_model or (config.reward_model if from_reward_model else config.model)
        if not source:
            raise ConfigError("'critic_init' is 'reward_model' but no reward_model is set (a rule reward has none): "
                              "set critic_init=policy or critic_model=DIR")
        if source != config.model and load_tokenizer(source).get_vocab() != loaded.tokenizer.get_vocab():
            raise ConfigError(f"the critic's source {source} has another tokenizer than the policy's: the critic reads "
                              "the policy's tokens; set critic_init=policy")
        critic = load_critic(source, from_reward_model=from_reward_model or _is_reward_model(source),
                             normalized=config.normalize_reward, device=config.device, dtype=config.dtype, lora=config.lora,
                             gradient_checkpointing=config.gradient_checkpointing)
        disable_dropout(critic)
    if value_head is not None or config.ent_coef > 0:
        recorder = HeadRecorder(policy)
    return Models(policy, loaded.tokenizer, loaded.reference, critic, value_head, loaded.device, recorder,
                  with_reference, config.padding_free)


def _is_reward_model(path: str) -> bool:
    config = Path(str(path)).expanduser() / "config.json"
    return config.is_file() and "ForSequenceClassification" in config.read_text()


# ---------------------------------------------------------------- scorers: the reward model, or rules


def reward_model_scorer(reward_model: RewardModel, policy_tokenizer, *, safety: RewardModel | None = None,
                        safety_field: str = "harmful", normalize: bool = True, batch_size: int = 64,
                        padding_free: bool = False) -> Scorer:
    """Scores from a reward model, normalised with its saved mean and std. With `safety`, prompts
    whose item field `safety_field` is true go to it instead (Llama 2's safety / helpfulness
    split): each model only judges the requests it was trained on, and normalisation puts both
    on one scale. A reward model of the policy's tokenizer reads the sampled token ids as they
    are (packed end to end with `padding_free`); another one reads the decoded texts."""
    models = [reward_model] + ([safety] if safety is not None else [])
    # (metric name, model, scores the safety prompts, reads the policy's token ids as they are)
    routes = [("rm_score/" + _name(model), model, model is safety, model.same_tokenizer(policy_tokenizer))
              for model in models]

    def score(items: list[TaskItem], prompts: list[str], completions: Completions) -> tuple[torch.Tensor, dict]:
        goes_to_safety = torch.tensor([bool(item.fields.get(safety_field)) and safety is not None for item in items])
        scores, metrics = torch.zeros(len(items)), {}
        for name, model, is_safety, reads_ids in routes:
            rows = (goes_to_safety == is_safety).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            raw = torch.cat([_score_rows(model, reads_ids, prompts, completions, chunk, padding_free)
                             for chunk in rows.split(batch_size)])
            values = model.normalize(raw) if normalize else raw
            scores[rows] = values.float().cpu()
            metrics[name] = values.mean().item()
        return scores, metrics

    return score


def _name(model: RewardModel) -> str:
    parts = Path(model.path).parts
    return parts[-2] if len(parts) > 1 and parts[-1] == "model" else (parts[-1] if parts else "reward_model")


def _score_rows(model: RewardModel, reads_ids: bool, prompts, completions: Completions, rows,
                padding_free: bool) -> torch.Tensor:
    if reads_ids:
        return model.score_tokens(*trimmed(completions, rows)[:4], padding_free=padding_free)
    return model.score_texts([prompts[i] for i in rows.tolist()], [completions.texts[i] for i in rows.tolist()])


def rule_scorer(score_completions) -> Scorer:
    """Scores from reward functions (`r1lab.rewards.scorer(...)`), e.g. a rule that checks the answer."""

    def score(items: list[TaskItem], prompts: list[str], completions: Completions) -> tuple[torch.Tensor, dict]:
        keys = sorted({key for item in items for key in item.fields})
        fields = {key: [item.fields.get(key) for item in items] for key in keys}
        fields["answer"] = [item.answer for item in items]
        rewards, metrics, *_ = score_completions(prompts, completions.texts, fields)
        return torch.tensor(rewards, dtype=torch.float32), metrics

    return score
