"""Training a reward model on preference pairs (`r1lab reward-model`): the pairs, the loop, the held-out check.

    loss = -log sigmoid(r(x, y_c) - r(x, y_r) - margin)  + c * mean((r_c + r_r)^2)   (core.preference)

Each step, in DESIGN.md's terms: collect (a batch of pairs), score (one forward of chosen and
rejected together), improve (BT loss, accumulated over micro-batches), record (accuracy,
margin, checkpoint). The model itself, its loading and saving are in `r1lab.llm.reward_model`.
"""

from __future__ import annotations

import math
import random
import resource
import statistics
import time
from pathlib import Path

import torch

from r1lab.core import bradley_terry_loss, reward_centering
from r1lab.llm.loading import load_tokenizer
from r1lab.llm.prompts import apply_template, encode_texts, jsonl_rows
from r1lab.llm.reward_model import new_reward_model, right_padded, save_reward_model, sequence_scores
from r1lab.llm.rlhf_config import BUILTIN_PAIR_SETS, RewardModelConfig
from r1lab.runs import (
    ProgressBar,
    Run,
    ShuffledBatches,
    rng_state,
    seed_everything,
    set_rng_state,
    to_dict,
    warmup_then_decay,
)

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
    batches = ShuffledBatches(train, config.batch_size, config.seed + 1)
    start_step, history = 0, []
    eval_batch = 2 * config.batch_size
    if resume:
        state = run.load_checkpoint()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        batches.load_state_dict(state)
        start_step, history = state["step"], state["history"]
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
            micro_batches = batches.take(config.grad_accumulation)
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
                                           "schedule": schedule.state_dict(), **batches.state_dict(),
                                           "rng": rng_state(), "step": step,
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
