"""Reward models: a causal LM's trunk with a scalar head; built, scored, saved and loaded here, trained
on preference pairs in `r1lab.llm.reward_model_training` (`r1lab reward-model`).

    r(x, y)  = w . h_last(x, y)              the head on the trunk's hidden state at the last real token
    loss     = -log sigmoid(r(x, y_c) - r(x, y_r) - margin)  + c * mean((r_c + r_r)^2)   (core.preference)

The model is a one-label `AutoModelForSequenceClassification` built on the causal LM's trunk
(the trunk's weights load, the `score` head starts fresh), so plain transformers loads what this
module saves. A pair's chosen and rejected answers go through one forward. After training, the
mean and std of the model's scores on training pairs are stored in its config
(`r1lab_reward_mean`, `r1lab_reward_std`), and every consumer normalises with them: RLHF-PPO,
the `r1lab.rewards` adapter, and the routing of two reward models whose raw scales differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from r1lab.llm.loading import (
    freeze,
    load_tokenizer,
    pick_device,
    pick_dtype,
    quiet_transformers,
    resolve_model_path,
)
from r1lab.llm.logprobs import sequence_positions
from r1lab.llm.packing import pack, packed_states
from r1lab.llm.precision import autocast, set_compute_dtype
from r1lab.llm.prompts import encode_texts

MEAN_KEY, STD_KEY = "r1lab_reward_mean", "r1lab_reward_std"


# ---------------------------------------------------------------- the model: trunk, head, scores


def base_transformer(model):
    """The transformers model under a peft wrapper (LoRA layers stay injected in it), else the model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def trunk(model):
    """The decoder stack without a head: what `base_model_prefix` names (`model` for Llama/Qwen2,
    `transformer` for GPT-2); the sequence-classification and causal-LM classes both have it."""
    inner = base_transformer(model)
    return getattr(inner, inner.base_model_prefix)


def score_head(model) -> torch.nn.Module:
    """The scalar head of a one-label sequence-classification model (`score`, or `classifier`): a
    linear layer, or under LoRA peft's wrapper that trains a copy of it."""
    inner = base_transformer(model)
    head = getattr(inner, "score", None) or getattr(inner, "classifier", None)
    if not isinstance(head, torch.nn.Linear) and not hasattr(head, "modules_to_save"):
        raise ValueError(f"{type(inner).__name__} has no linear `score` head: not a reward model r1lab can use")
    return head


def float32_head(head: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The head in fp32 whatever the compute dtype (as the LM head: see `r1lab.llm.precision`)."""
    with torch.autocast(hidden.device.type, enabled=False):
        if not isinstance(head, torch.nn.Linear):  # peft's wrapper: its active copy, whose weights train in fp32
            return head(hidden.float())
        bias = None if head.bias is None else head.bias.float()
        return F.linear(hidden.float(), head.weight.float(), bias)


def hidden_states(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The trunk's last hidden states (B, L, H) in the model's compute dtype; any padding layout."""
    with autocast(model):
        return trunk(model)(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=sequence_positions(attention_mask), use_cache=False).last_hidden_state


def completion_states(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                      padding_free: bool = False) -> torch.Tensor:
    """The trunk's hidden states (B, T + 1, H) at positions P - 1 ... P + T - 1 of left-padded prompts
    (B, P) followed by right-padded completions (B, T): state t is the one that predicts completion
    token t (a critic's V_t), and state len_b is row b's last token (a reward model's score).

    When rows repeat a prompt (samples_per_prompt > 1), each distinct prompt runs once and its keys
    and values are indexed out to its rows, as `r1lab.llm.logprobs.token_logprobs` does; gradients
    flow back through the indexing, so numbers and gradient are those of the plain forward.
    `padding_free` packs the rows' real tokens end to end instead (`r1lab.llm.packing`)."""
    from r1lab.llm.decoding import cache_argument

    body = trunk(model)
    if padding_free:
        with autocast(model):
            return packed_states(body, pack(prompt_ids, prompt_mask, completion_ids, completion_mask))
    attention_mask = torch.cat([prompt_mask, completion_mask.to(prompt_mask.dtype)], 1)
    positions = sequence_positions(attention_mask)
    prompt_width = prompt_ids.shape[1]
    distinct, copy_of = torch.unique(torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], 1), dim=0,
                                     return_inverse=True)
    checkpointing = getattr(base_transformer(model), "is_activation_checkpointing", False)
    with autocast(model):
        if distinct.shape[0] == prompt_ids.shape[0] or checkpointing:
            hidden = body(input_ids=torch.cat([prompt_ids, completion_ids], 1), attention_mask=attention_mask,
                          position_ids=positions, use_cache=False).last_hidden_state
            return hidden[:, prompt_width - 1 :]
        from transformers import DynamicCache

        cache = DynamicCache(config=base_transformer(model).config)
        distinct_mask = distinct[:, prompt_width:].to(prompt_mask.dtype)
        prefix = body(input_ids=distinct[:, :prompt_width], attention_mask=distinct_mask,
                      position_ids=sequence_positions(distinct_mask), use_cache=True, **{cache_argument(body): cache})
        cache.batch_select_indices(copy_of)
        rest = body(input_ids=completion_ids, attention_mask=attention_mask, position_ids=positions[:, prompt_width:],
                    use_cache=True, **{cache_argument(body): cache})
        return torch.cat([prefix.last_hidden_state[copy_of, -1:], rest.last_hidden_state], 1)


def last_real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B,) index of each row's rightmost real token (left-padded prompts, right-padded answers)."""
    width = attention_mask.shape[1]
    return width - 1 - attention_mask.flip(1).long().argmax(1)


def sequence_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """r(x, y): the head on the hidden state of each row's last real token, (B,) fp32.

    The same token transformers' own forward pools at when no real token equals the pad id."""
    hidden = hidden_states(model, input_ids, attention_mask)
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_real_index(attention_mask)]
    return float32_head(score_head(model), last).squeeze(-1)


# ---------------------------------------------------------------- a trained reward model, loaded


@dataclass
class RewardModel:
    """A frozen reward model with its tokenizer and the score statistics saved beside it."""

    model: Any
    tokenizer: Any
    mean: float
    std: float
    path: str

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """(r - mean) / std: scores of the training pairs become mean 0, std 1."""
        return (raw - self.mean) / self.std

    @torch.no_grad()
    def score_tokens(self, prompt_ids, prompt_mask, completion_ids, completion_mask,
                     padding_free: bool = False) -> torch.Tensor:
        """Raw scores (B,) of left-padded prompts and right-padded completions given as token ids of
        this model's own tokenizer (the policy's, in RLHF): no decoding, no re-tokenising."""
        device = self.model.device
        states = completion_states(self.model, prompt_ids.to(device), prompt_mask.to(device), completion_ids.to(device),
                                   completion_mask.to(device), padding_free)
        last = states[torch.arange(states.shape[0], device=device), completion_mask.to(device).long().sum(1)]
        return float32_head(score_head(self.model), last).squeeze(-1)

    @torch.no_grad()
    def score_texts(self, prompts: list[str], completions: list[str], batch_size: int = 64,
                    add_eos: bool = True) -> torch.Tensor:
        """Raw scores (B,) of prompt + completion texts, as a policy of another tokenizer would hand them.

        Each text is tokenised as it stands (BOS where the tokenizer adds one), with EOS after the
        completion: the shape the model was trained on, a finished answer."""
        scores = []
        for start in range(0, len(prompts), batch_size):
            rows = [p + c for p, c in zip(prompts[start : start + batch_size], completions[start : start + batch_size])]
            encoded = [ids + [self.tokenizer.eos_token_id] if add_eos else ids for ids in encode_texts(self.tokenizer, rows)]
            ids, mask = right_padded(encoded, self.tokenizer.pad_token_id)
            scores.append(sequence_scores(self.model, ids.to(self.model.device), mask.to(self.model.device)))
        return torch.cat(scores) if scores else torch.zeros(0)

    def same_tokenizer(self, tokenizer) -> bool:
        return tokenizer is self.tokenizer or tokenizer.get_vocab() == self.tokenizer.get_vocab()

    def memory_mb(self) -> float:
        return model_memory_mb(self.model)


def check_reward_model(path: str | Path) -> dict:
    """The config of the reward model in `path`, or one clear error saying why it is not one."""
    directory = Path(str(path)).expanduser()
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path}: not a reward model directory (no config.json); "
                                "train one with `r1lab reward-model`")
    config = json.loads(config_file.read_text())
    architectures = config.get("architectures") or []
    labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if not any(a.endswith("ForSequenceClassification") for a in architectures) or labels != 1:
        what = ", ".join(architectures) or "no architecture"
        raise ValueError(f"{path} is not a reward model: its config says {what} with {labels} label(s), not a "
                         "one-label sequence classifier; train one with `r1lab reward-model --model {path}`")
    return config


def load_reward_model(path: str | Path, *, device: str | None = None, dtype: str | None = None) -> RewardModel:
    """A reward model saved by `train_reward_model` (or any one-label sequence classifier), frozen
    and stored in the compute dtype; mean 0 and std 1 when it carries no statistics."""
    from transformers import AutoModelForSequenceClassification

    config = check_reward_model(path)
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(torch_device, dtype)
    tokenizer = load_tokenizer(str(path))
    quiet_transformers()
    model = AutoModelForSequenceClassification.from_pretrained(str(Path(str(path)).expanduser()), dtype=torch_dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    set_compute_dtype(model, torch_dtype)
    model = freeze(model.to(torch_device))
    std = float(config.get(STD_KEY) or 1.0)
    return RewardModel(model, tokenizer, float(config.get(MEAN_KEY) or 0.0), std if std > 0 else 1.0, str(path))


def new_reward_model(name: str, *, device=None, dtype=None, lora=None, gradient_checkpointing: bool = False):
    """A one-label sequence classifier on the trunk of causal LM `name`, fp32 weights, compute dtype
    set; its head is fresh unless `name` already is a reward model. Returns (model, tokenizer, device)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path = resolve_model_path(name)
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(torch_device, dtype)
    tokenizer = load_tokenizer(name)
    quiet_transformers()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight is newly initialised" is the point, not a warning
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(f"could not load '{name}' as a reward-model trunk: {error}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(torch_device)
    set_compute_dtype(model, torch_dtype)
    if lora is not None and lora.rank > 0:
        model = sequence_classifier_lora(model, lora)
    if gradient_checkpointing:
        getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    return model, tokenizer, torch_device


def sequence_classifier_lora(model, settings):
    """LoRA adapters on the trunk; the fresh score head trains in full (peft's SEQ_CLS task saves it)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        from r1lab.runs import ConfigError

        raise ConfigError("LoRA (lora.rank > 0) needs peft: pip install 'r1lab[lora]'") from None
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, task_type="SEQ_CLS")
    return get_peft_model(model, config)


def model_memory_mb(model) -> float:
    """Parameters and buffers of `model`, in MB (what holding it costs, before activations)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def right_padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def save_reward_model(model, tokenizer, directory: Path, mean: float, std: float) -> None:
    """Save as a plain one-label sequence classifier (LoRA merged in), the score statistics in its config."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config.__dict__[MEAN_KEY] = mean
    model.config.__dict__[STD_KEY] = std
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
