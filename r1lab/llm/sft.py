"""Supervised fine-tuning on (prompt, completion) pairs, with the loss on completion tokens only.

The loss of an optimiser step is the mean cross-entropy over every completion token of the
accumulated batch (sum over micro-batches / total completion tokens), so gradient accumulation
gives the same update as one large batch. R1's cold start and its rejection-sampling SFT stage
both run through `train_sft`.
"""

from __future__ import annotations

import math
import random
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from r1lab.llm.loading import load_model, load_tokenizer
from r1lab.llm.logprobs import sequence_positions
from r1lab.llm.precision import autocast
from r1lab.llm.prompts import apply_template, encode_texts, jsonl_rows
from r1lab.llm.sft_config import SFTConfig
from r1lab.runs import (
    ProgressBar,
    ShuffledBatches,
    rng_state,
    seed_everything,
    set_rng_state,
    to_dict,
    warmup_then_decay,
)
from r1lab.scale.learner import current_learner, data_parallel, learner_run


def read_pairs(path: str | Path, tokenizer=None) -> list[dict]:
    """SFT rows in any of TRL's formats, as {"prompt", "completion", "templated"}:

        {"prompt": "...", "completion": "..."}                          prompt-completion
        {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}  conversation: the last
                                                                        assistant turn is learned
        {"prompt": [messages], "completion": [messages]}                conversational prompt-completion

    Conversations go through the tokenizer's chat template (`templated`: no further template is
    applied). A bad row stops with its file and line."""
    pairs = []
    for where, row in jsonl_rows(path, "SFT data"):
        if "messages" in row:
            messages = _messages(row["messages"], where, "messages")
            if messages[-1]["role"] != "assistant":
                raise ValueError(f"{where}: the last message must be the assistant's, the one to learn")
            pairs.append(_conversation_pair(tokenizer, messages[:-1], messages[-1:], where))
        elif isinstance(row.get("prompt"), list) or isinstance(row.get("completion"), list):
            pairs.append(_conversation_pair(tokenizer, _messages(row.get("prompt"), where, "prompt"),
                                            _messages(row.get("completion"), where, "completion"), where))
        else:
            for key in ("prompt", "completion"):
                if not isinstance(row.get(key), str):
                    raise ValueError(f"{where}: needs a string '{key}' field (or 'messages', a conversation)")
            pairs.append({"prompt": row["prompt"], "completion": row["completion"], "templated": False})
    return pairs


def _messages(value, where: str, key: str) -> list[dict]:
    if not isinstance(value, list) or not value or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value):
        raise ValueError(f"{where}: '{key}' must be a non-empty list of {{\"role\", \"content\"}} messages")
    return value


def _conversation_pair(tokenizer, prompt: list[dict], completion: list[dict], where: str) -> dict:
    """The prompt as the chat template renders it up to the assistant's turn, and the completion
    as the rest of the rendered conversation (TRL's rule), without the template's final EOS,
    which `encode_pairs` adds itself."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{where}: a conversation needs a tokenizer with a chat template")
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
    completion_text = (full_text[len(prompt_text):] if full_text.startswith(prompt_text)
                       else "".join(m["content"] for m in completion))
    eos = tokenizer.eos_token or ""
    if eos and completion_text.rstrip().endswith(eos):
        completion_text = completion_text.rstrip()[: -len(eos)]
    return {"prompt": prompt_text, "completion": completion_text, "templated": True}


def encode_pairs(tokenizer, pairs: list[dict], template: str, max_length: int) -> list[tuple[list[int], int]]:
    """(token ids of prompt + completion + EOS, prompt length) per pair, cut to `max_length`."""
    encoded = []
    for row, pair in enumerate(pairs, start=1):
        text = pair["prompt"] if pair.get("templated") else apply_template(template, pair["prompt"], tokenizer)
        prompt = encode_texts(tokenizer, [text])[0]
        if len(prompt) >= max_length:  # nothing of the completion would be left to learn from
            raise ValueError(f"pair {row}: the prompt alone is {len(prompt)} tokens and max_length is {max_length}; "
                             "raise max_length or shorten the prompt")
        completion = tokenizer(pair["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append(((prompt + completion)[:max_length], len(prompt)))
    return encoded


def collate(examples: list[tuple[list[int], int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask, and labels that are -100 on prompt and padding."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, (ids, prompt_length) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, prompt_length : len(ids)] = torch.tensor(ids[prompt_length:])
    attention_mask = (torch.arange(width)[None] < torch.tensor([len(ids) for ids, _ in examples])[:, None]).long()
    return input_ids, attention_mask, labels


def completion_loss_sum(model, input_ids, attention_mask, labels) -> tuple[torch.Tensor, int]:
    """Sum of cross-entropy over completion tokens, and how many there are."""
    with autocast(model):
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=sequence_positions(attention_mask), use_cache=False).logits
    targets = labels[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum")
    return loss, int((targets != -100).sum())


@torch.no_grad()
def evaluation_loss(model, examples, pad_id: int, batch_size: int, device) -> float:
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = [t.to(device) for t in collate(examples[start : start + batch_size], pad_id)]
        loss, tokens = completion_loss_sum(model, *batch)
        total, count = total + loss.item(), count + tokens
    model.train(was_training)
    return total / max(count, 1)


def accumulate_gradients(model, micro_batches: list[list[tuple[list[int], int]]], pad_id: int, device) -> tuple[float, int]:
    """Backward the step's loss, sum over micro-batches of (completion cross-entropy sum / the
    step's completion tokens); returns (the loss, the tokens). A data-parallel learner's rank
    takes its share of each micro-batch's rows and the shares' gradients are summed: with the
    step's token count as the one denominator, the sum is the whole step's gradient."""
    learner = current_learner()
    total_tokens = sum(len(ids) - p for batch in micro_batches for ids, p in batch)
    loss_value = 0.0
    for examples in micro_batches:
        examples = learner.shard(examples)
        if not examples:
            continue
        batch = [t.to(device) for t in collate(examples, pad_id)]
        loss, _ = completion_loss_sum(model, *batch)
        (loss / total_tokens).backward()
        loss_value += loss.item() / total_tokens
    learner.all_reduce_gradients(model.parameters())
    return learner.all_reduce_sums({"loss": loss_value})["loss"], total_tokens


@data_parallel  # learner_workers > 1: the same function, run as a data-parallel learner (r1lab.scale)
def train_sft(config: SFTConfig, run_dir: Path, resume: bool = False, quiet: bool = False,
              stop_after: int | None = None, overwrite: bool = False) -> dict:
    seed_everything(config.seed)
    # the data and the model are checked before the run directory exists: a job that cannot
    # start leaves nothing behind
    tokenizer = load_tokenizer(config.model)
    pairs = read_pairs(config.data, tokenizer)
    eval_pairs = read_pairs(config.eval_data, tokenizer) if config.eval_data else None
    random.Random(config.seed).shuffle(pairs)
    if eval_pairs is None:
        cut = int(len(pairs) * config.eval_share)
        eval_pairs, pairs = pairs[:cut], pairs[cut:]
    train = encode_pairs(tokenizer, pairs, config.template, config.max_length)
    held_out = encode_pairs(tokenizer, eval_pairs, config.template, config.max_length)
    loaded = load_model(config.model, device=config.device, dtype=config.dtype, lora=config.lora,
                        gradient_checkpointing=config.gradient_checkpointing)
    model, tokenizer, device = loaded.policy, loaded.tokenizer, loaded.device
    run = learner_run(run_dir, "sft", config, resume=resume, overwrite=overwrite)
    per_step = config.batch_size * config.grad_accumulation
    steps = config.max_steps or max(1, math.ceil(config.epochs * len(train) / per_step))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_then_decay(s, steps, config.warmup_steps))
    batches = ShuffledBatches(train, config.batch_size, config.seed + 1)
    start_step = 0
    if resume:
        state = run.load_checkpoint()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        batches.load_state_dict(state)
        start_step = state["step"]
        set_rng_state(state["rng"])
        eval_loss_first = state["eval_loss_first"]  # the untrained model's, not the resumed one's
    else:
        eval_loss_first = (evaluation_loss(model, held_out, tokenizer.pad_token_id, config.batch_size, device)
                           if held_out else None)
        if eval_loss_first is not None:
            run.log(0, {"eval_loss": eval_loss_first})  # the untrained model's point on the eval curve
    model.train()
    loss_value, eval_loss = float("nan"), eval_loss_first
    with ProgressBar(steps, "sft", enabled=not quiet) as bar:
        bar.advance(start_step)
        for step in range(start_step + 1, steps + 1):
            started = time.perf_counter()
            micro_batches = batches.take(config.grad_accumulation)
            loss_value, total_tokens = accumulate_gradients(model, micro_batches, tokenizer.pad_token_id, device)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            metrics = {"loss": loss_value, "grad_norm": float(grad_norm), "lr": schedule.get_last_lr()[0],
                       "tokens": total_tokens, "step_seconds": time.perf_counter() - started}
            if held_out and (step % config.eval_every == 0 or step == steps):
                eval_loss = evaluation_loss(model, held_out, tokenizer.pad_token_id, config.batch_size, device)
                metrics["eval_loss"] = eval_loss
            run.log(step, metrics)
            bar.advance(1, info=f"loss {loss_value:.3f}")
            if run.checkpoint_due(step) or step == stop_after:
                run.save_checkpoint(step, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                           "schedule": schedule.state_dict(), **batches.state_dict(),
                                           "rng": rng_state(), "step": step,
                                           "eval_loss_first": eval_loss_first})
            if step == stop_after:
                run.close()
                return {"stopped_at": step}
            run.stop_if_requested(step)
    if config.save_model:
        model.save_pretrained(run.dir / "model")
        tokenizer.save_pretrained(run.dir / "model")
    summary = {"steps": steps, "train_examples": len(train), "eval_examples": len(held_out),
               "loss_last": loss_value, "eval_loss_first": eval_loss_first, "eval_loss_last": eval_loss,
               "wall_seconds": run.elapsed, "model_dir": str(run.dir / "model") if config.save_model else None,
               "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "config": to_dict(config)}
    run.write_summary(summary)
    run.close()
    return summary
