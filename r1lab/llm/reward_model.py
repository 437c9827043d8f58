"""Reward models: a causal LM's trunk with a scalar head, trained on preference pairs (`r1lab reward-model`).

    r(x, y)  = w . h_last(x, y)              the head on the trunk's hidden state at the last real token
    loss     = -log sigmoid(r(x, y_c) - r(x, y_r) - margin)  + c * mean((r_c + r_r)^2)   (core.preference)

The model is a one-label `AutoModelForSequenceClassification` built on the causal LM's trunk
(the trunk's weights load, the `score` head starts fresh), so plain transformers loads what this
module saves. A pair's chosen and rejected answers go through one forward. After training, the
mean and std of the model's scores on training pairs are stored in its config
(`r1lab_reward_mean`, `r1lab_reward_std`), and every consumer normalises with them: RLHF-PPO,
the `r1lab.rewards` adapter, and the routing of two reward models whose raw scales differ.

Each step of training, in DESIGN.md's terms: collect (a batch of pairs), score (one forward),
improve (BT loss, accumulated over micro-batches), record (accuracy, margin, checkpoint).
"""

from __future__ import annotations

import json
import math
import random
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from r1lab.core import bradley_terry_loss, reward_centering
from r1lab.llm.loading import (
    freeze,
    load_tokenizer,
    pick_device,
    pick_dtype,
    quiet_transformers,
    resolve_model_path,
)
from r1lab.llm.logprobs import sequence_positions
from r1lab.llm.precision import autocast, set_compute_dtype
from r1lab.llm.prompts import apply_template, encode_texts, jsonl_rows
from r1lab.llm.rlhf_config import BUILTIN_PAIR_SETS, RewardModelConfig
from r1lab.runs import ProgressBar, Run, rng_state, seed_everything, set_rng_state, to_dict, warmup_then_decay

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


def completion_states(model, prompt_ids, prompt_mask, completion_ids, completion_mask) -> torch.Tensor:
    """The trunk's hidden states (B, T + 1, H) at positions P - 1 ... P + T - 1 of left-padded prompts
    (B, P) followed by right-padded completions (B, T): state t is the one that predicts completion
    token t (a critic's V_t), and state len_b is row b's last token (a reward model's score).

    When rows repeat a prompt (samples_per_prompt > 1), each distinct prompt runs once and its keys
    and values are indexed out to its rows, as `r1lab.llm.logprobs.token_logprobs` does; gradients
    flow back through the indexing, so numbers and gradient are those of the plain forward."""
    from r1lab.llm.decoding import cache_argument

    body = trunk(model)
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
    def score_tokens(self, prompt_ids, prompt_mask, completion_ids, completion_mask) -> torch.Tensor:
        """Raw scores (B,) of left-padded prompts and right-padded completions given as token ids of
        this model's own tokenizer (the policy's, in RLHF): no decoding, no re-tokenising."""
        device = self.model.device
        states = completion_states(self.model, prompt_ids.to(device), prompt_mask.to(device), completion_ids.to(device),
                                   completion_mask.to(device))
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


# ---------------------------------------------------------------- preference data


def read_preference_pairs(source, split: str = "train", count: int = 1000, seed: int = 0,
                          margin_field: str = "margin") -> list[dict]:
    """Rows {prompt, chosen, rejected, margin} from a built-in set ('helpful', 'harmless': `count`
    pairs of `split`), a JSONL file, or a `datasets.Dataset` (any sequence of mappings). A bad row
    (a missing column, an empty answer, a margin that is not a number) stops with its place."""
    if isinstance(source, str) and source in BUILTIN_PAIR_SETS:
        from r1lab.tasks.general import preference_pairs

        return [_pair(row, f"'{source}' pair {i}", margin_field) for i, row in
                enumerate(preference_pairs(source, count, split, seed))]
    if isinstance(source, (str, Path)):
        if not str(source).endswith(".jsonl") and not Path(source).is_file():
            raise FileNotFoundError(f"{source}: not a built-in preference set ({', '.join(BUILTIN_PAIR_SETS)}) "
                                    "and no such JSONL file")
        return [_pair(row, where, margin_field) for where, row in jsonl_rows(source, "preference data")]
    return [_pair(dict(row), f"dataset row {i}", margin_field) for i, row in enumerate(source)]


def _pair(row: dict, where: str, margin_field: str) -> dict:
    missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
    if missing:
        raise ValueError(f"{where}: missing field {', '.join(map(repr, missing))} (has {', '.join(row) or 'nothing'}); "
                         "a preference pair needs prompt, chosen and rejected")
    for key in ("prompt", "chosen", "rejected"):
        if not isinstance(row[key], str):
            raise ValueError(f"{where}: '{key}' must be a string, got {type(row[key]).__name__}")
    for key in ("chosen", "rejected"):
        if not row[key].strip():
            raise ValueError(f"{where}: '{key}' is empty; a preference pair needs two answers to compare")
    margin = row.get(margin_field)
    if margin is not None and (isinstance(margin, bool) or not isinstance(margin, (int, float))):
        raise ValueError(f"{where}: '{margin_field}' must be a number, got {margin!r}")
    return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"],
            "margin": None if margin is None else float(margin)}


def with_mismatched_pairs(pairs: list[dict], share: float, seed: int = 0) -> list[dict]:
    """`pairs` plus round(share * len) pairs (prompt_i, chosen_i, chosen_j): a good answer to another
    request is a bad answer to this one. It teaches the model to read whether an answer fits its
    prompt, which the policy's off-topic samples need and hand-made rejected answers rarely show.
    Half of the other requests are near ones (their prompt starts with the same two words: the same
    kind of request about something else), the hard negatives; half are any other request."""
    rng = random.Random(seed)
    by_opening: dict[str, list[dict]] = {}
    for pair in pairs:
        by_opening.setdefault(" ".join(pair["prompt"].split()[:2]), []).append(pair)
    extra, attempts = [], 0
    wanted = round(share * len(pairs))
    while len(extra) < wanted and attempts < 20 * wanted:
        attempts += 1
        own = rng.choice(pairs)
        near = by_opening[" ".join(own["prompt"].split()[:2])]
        other = rng.choice(near if attempts % 2 else pairs)
        if other["prompt"] != own["prompt"] and other["chosen"] != own["chosen"]:
            extra.append({"prompt": own["prompt"], "chosen": own["chosen"], "rejected": other["chosen"], "margin": None})
    return pairs + extra


def render_prompt(tokenizer, prompt: str, template: str) -> str:
    return apply_template(template, prompt, tokenizer)


def response_text(tokenizer, prompt: str, response: str, template: str) -> str:
    """The response as it follows the rendered prompt: under 'chat', the assistant turn the chat
    template renders, without its closing EOS (added as a token); under 'plain', as written."""
    if template != "chat":
        return response
    prompt_text = render_prompt(tokenizer, prompt, template)
    full = tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                          {"role": "assistant", "content": response}], tokenize=False)
    text = full[len(prompt_text):] if full.startswith(prompt_text) else " " + response
    eos = tokenizer.eos_token or ""
    if eos and text.rstrip().endswith(eos):
        text = text.rstrip()[: -len(eos)]
    return text


def encode_pairs(tokenizer, pairs: list[dict], template: str, max_length: int) -> list[tuple[list[int], list[int], float | None]]:
    """(chosen ids, rejected ids, margin) per pair: prompt + response + EOS, the last `max_length`
    tokens kept (the score is read at the end)."""
    prompts = encode_texts(tokenizer, [render_prompt(tokenizer, p["prompt"], template) for p in pairs])
    texts = [response_text(tokenizer, p["prompt"], p[key], template) for p in pairs for key in ("chosen", "rejected")]
    answers = tokenizer(texts, add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id]
    encoded = []
    for i, (pair, prompt) in enumerate(zip(pairs, prompts)):
        chosen, rejected = (list(prompt) + list(answers[2 * i + k]) + eos for k in (0, 1))
        encoded.append((chosen[-max_length:], rejected[-max_length:], pair["margin"]))
    return encoded


def right_padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


def pair_scores(model, batch, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """r_chosen (b,), r_rejected (b,) from one forward over the 2b rows, and the margins (or None)."""
    ids, mask = right_padded([c for c, _, _ in batch] + [r for _, r, _ in batch], pad_id)
    scores = sequence_scores(model, ids.to(device), mask.to(device))
    margins = [m for _, _, m in batch]
    margin = None if all(m is None for m in margins) else torch.tensor([m or 0.0 for m in margins], device=device)
    return scores[: len(batch)], scores[len(batch):], margin


@torch.no_grad()
def evaluate_pairs(model, pairs, pad_id: int, device, batch_size: int) -> dict:
    """Held-out pairwise accuracy (share with r_chosen > r_rejected), mean margin r_c - r_r, BT loss."""
    if not pairs:
        return {}
    was_training = model.training
    model.eval()
    gaps, losses = [], []
    for start in range(0, len(pairs), batch_size):
        chosen, rejected, margin = pair_scores(model, pairs[start : start + batch_size], pad_id, device)
        gaps.append(chosen - rejected)
        losses.append(bradley_terry_loss(chosen, rejected, margin))
    model.train(was_training)
    gap = torch.cat(gaps)
    return {"accuracy": (gap > 0).float().mean().item(), "margin": gap.mean().item(),
            "loss": torch.cat(losses).mean().item()}


@torch.no_grad()
def score_statistics(model, pairs, pad_id: int, device, batch_size: int) -> tuple[float, float]:
    """Mean and std of the scores of the chosen and the rejected answers of `pairs`."""
    was_training = model.training
    model.eval()
    scores = []
    for start in range(0, len(pairs), batch_size):
        chosen, rejected, _ = pair_scores(model, pairs[start : start + batch_size], pad_id, device)
        scores += [chosen, rejected]
    model.train(was_training)
    pooled = torch.cat(scores)
    return pooled.mean().item(), max(pooled.std().item() if pooled.numel() > 1 else 1.0, 1e-6)


# ---------------------------------------------------------------- training


def _split(config: RewardModelConfig, dataset, eval_dataset) -> tuple[list[dict], list[dict]]:
    source = dataset if dataset is not None else config.data
    held_out_source = eval_dataset if eval_dataset is not None else config.eval_data
    if isinstance(source, str) and source in BUILTIN_PAIR_SETS:
        train = read_preference_pairs(source, "train", config.train_pairs, config.seed, config.margin_field)
        if held_out_source is None:
            return train, read_preference_pairs(source, "test", config.eval_pairs, config.seed, config.margin_field)
    else:
        train = read_preference_pairs(source, margin_field=config.margin_field)
    if held_out_source is not None:
        return train, read_preference_pairs(held_out_source, "test", config.eval_pairs, config.seed, config.margin_field)
    random.Random(config.seed).shuffle(train)
    cut = int(len(train) * config.eval_share)
    return train[cut:], train[:cut]


def train_reward_model(config: RewardModelConfig, run_dir: str | Path, *, dataset=None, eval_dataset=None,
                       resume: bool = False, quiet: bool = False, stop_after: int | None = None,
                       overwrite: bool = False) -> dict:
    """Train a reward model on preference pairs; returns the summary also written to RUN_DIR/summary.json.

    `dataset` / `eval_dataset` (a `datasets.Dataset` or a list of rows) replace `config.data` /
    `config.eval_data`. The model goes to RUN_DIR/model with its score statistics in its config.
    """
    seed_everything(config.seed)
    # data and tokenizer are checked before the run directory exists: a job that cannot start leaves nothing
    tokenizer = load_tokenizer(config.model)
    train_rows, eval_rows = _split(config, dataset, eval_dataset)
    if not train_rows:
        raise ValueError(f"{config.data}: no training pairs")
    if config.mismatched_pairs:
        train_rows = with_mismatched_pairs(train_rows, config.mismatched_pairs, config.seed)
    train = encode_pairs(tokenizer, train_rows, config.template, config.max_length)
    held_out = encode_pairs(tokenizer, eval_rows, config.template, config.max_length) if eval_rows else []
    model, tokenizer, device = new_reward_model(config.model, device=config.device, dtype=config.dtype, lora=config.lora,
                                                gradient_checkpointing=config.gradient_checkpointing)
    pad_id = tokenizer.pad_token_id
    run = Run(run_dir, "reward-model", config, resume=resume, overwrite=overwrite)
    per_step = config.batch_size * config.grad_accumulation
    steps = config.steps or max(1, math.ceil(config.epochs * len(train) / per_step))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_then_decay(
        s, steps, config.warmup_steps, config.lr_schedule))
    order_rng = random.Random(config.seed + 1)
    order, cursor, start_step, history = list(range(len(train))), 0, 0, []
    order_rng.shuffle(order)
    eval_batch = 2 * config.batch_size
    if resume:
        state = run.load_checkpoint()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        order, cursor, start_step, history = state["order"], state["cursor"], state["step"], state["history"]
        order_rng.setstate(state["order_rng"])
        set_rng_state(state["rng"])
        first = state["eval_first"]
    else:
        first = evaluate_pairs(model, held_out, pad_id, device, eval_batch)
        if first:
            run.log(0, {f"eval/{k}": v for k, v in first.items()})
    model.train()
    evaluation = first
    with ProgressBar(steps, "reward-model", enabled=not quiet) as bar:
        bar.advance(start_step)
        for step in range(start_step + 1, steps + 1):
            started = time.perf_counter()
            micro_batches = []
            for _ in range(config.grad_accumulation):
                if cursor + config.batch_size > len(order):
                    order_rng.shuffle(order)
                    cursor = 0
                micro_batches.append([train[i] for i in order[cursor : cursor + config.batch_size]])
                cursor += config.batch_size
            sums = {"loss": 0.0, "accuracy": 0.0, "margin": 0.0, "centering": 0.0}
            for batch in micro_batches:
                chosen, rejected, margin = pair_scores(model, batch, pad_id, device)
                loss = bradley_terry_loss(chosen, rejected, margin).mean()
                if config.center_rewards_coef:
                    centering = reward_centering(chosen, rejected, config.center_rewards_coef)
                    loss = loss + centering
                    sums["centering"] += centering.item() / len(micro_batches)
                (loss / len(micro_batches)).backward()
                gap = (chosen - rejected).detach()
                sums["loss"] += loss.item() / len(micro_batches)
                sums["accuracy"] += (gap > 0).float().mean().item() / len(micro_batches)
                sums["margin"] += gap.mean().item() / len(micro_batches)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            if not math.isfinite(float(grad_norm)):
                raise FloatingPointError("reward model: the gradient norm is not finite; lower lr")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            metrics = {**sums, "grad_norm": float(grad_norm), "lr": schedule.get_last_lr()[0],
                       "time/step": time.perf_counter() - started}
            if held_out and (step % config.eval_every == 0 or step == steps):
                evaluation = evaluate_pairs(model, held_out, pad_id, device, eval_batch)
                metrics.update({f"eval/{k}": v for k, v in evaluation.items()})
            run.log(step, metrics)
            history.append(metrics["time/step"])
            bar.advance(1, info=f"acc {sums['accuracy']:.2f}")
            if run.checkpoint_due(step, last=step == steps) or step == stop_after:
                run.save_checkpoint(step, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                           "schedule": schedule.state_dict(), "order": order, "cursor": cursor,
                                           "order_rng": order_rng.getstate(), "rng": rng_state(), "step": step,
                                           "history": history, "eval_first": first})
            if step == stop_after:
                run.close()
                return {"stopped_at": step}
            run.stop_if_requested(step)

    reference_pairs = [train[i] for i in range(min(len(train), config.normalization_pairs))]
    mean, std = score_statistics(model, reference_pairs, pad_id, device, eval_batch)
    model_dir = run.dir / "model"
    if config.save_model:
        save_reward_model(model, tokenizer, model_dir, mean, std)
    summary = {
        "steps": steps, "train_pairs": len(train), "eval_pairs": len(held_out),
        "eval_accuracy": evaluation.get("accuracy"), "eval_margin": evaluation.get("margin"),
        "eval_loss": evaluation.get("loss"), "eval_accuracy_first": first.get("accuracy") if first else None,
        "reward_mean": mean, "reward_std": std, "wall_seconds": run.elapsed,
        "seconds_per_step_median": statistics.median(history) if history else None,
        "model_dir": str(model_dir) if config.save_model else None,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "config": to_dict(config),
    }
    run.write_summary(summary)
    run.close()
    return summary


def save_reward_model(model, tokenizer, directory: Path, mean: float, std: float) -> None:
    """Save as a plain one-label sequence classifier (LoRA merged in), the score statistics in its config."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config.__dict__[MEAN_KEY] = mean
    model.config.__dict__[STD_KEY] = std
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
