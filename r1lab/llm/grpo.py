"""GRPO: group-relative policy optimisation of a language model on rewarded completions.

Each step reads top to bottom as the five steps every r1lab learner shares:

1. collect   sample G completions for each of P prompts (old-policy log-probs come with them)
2. score     run the reward functions; optional DAPO over-long shaping
3. estimate  group-relative advantages, A_i = (r_i - mean_group r) / (std_group r + eps)
4. improve   mu passes of the clipped per-token ratio objective (+ beta * KL to the reference),
             aggregated by the configured loss type, accumulated over micro-batches
5. record    metrics, sample completions, checkpoints

Every formula is a call into `r1lab.core`; this file only orchestrates.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1lab.core import (
    aggregate_loss,
    clipped_surrogate,
    group_advantages,
    group_reward_std,
    kl_estimate,
    masked_mean,
    overlong_penalty,
)
from r1lab.llm.generation import Completions, SamplingSettings
from r1lab.llm.grpo_config import GRPOConfig
from r1lab.llm.loading import load_model
from r1lab.llm.logprobs import PromptPass, completion_logprobs_after, shares_prompts, token_logprobs
from r1lab.llm.prompts import apply_template
from r1lab.runs import ProgressBar, Run, rng_state, seed_everything, set_rng_state, to_dict, warmup_then_decay
from r1lab.scale.learner import current_learner, data_parallel, learner_run
from r1lab.scale.sampling import LocalSampler, sampling_pool, text_scorer
from r1lab.tasks.base import TaskItem


@dataclass
class Batch:
    items: list[TaskItem]  # one per completion (each prompt's item repeated G times)
    prompts: list[str]
    completions: Completions
    rewards: torch.Tensor  # (B,)
    advantages: torch.Tensor  # (B,)
    reward_parts: dict[str, list] = field(default_factory=dict)  # each reward function's (B,) values


class PromptStream:
    """Prompts in a seeded shuffled order, epoch after epoch; its position is saved for `--resume`."""

    def __init__(self, items: list[TaskItem], seed: int):
        self.items, self.seed, self.epoch, self.position = items, seed, 0, 0
        self._order = self._shuffle()

    def _shuffle(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.items), generator=generator).tolist()

    def take(self, count: int) -> list[TaskItem]:
        taken = []
        for _ in range(count):
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._shuffle()
            taken.append(self.items[self._order[self.position]])
            self.position += 1
        return taken

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def restore(self, state: dict) -> None:
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._shuffle()


@data_parallel  # learner_workers > 1: the same function, run as a data-parallel learner (r1lab.scale)
def train_grpo(config: GRPOConfig, run_dir: Path, items: list[TaskItem], score_completions: Callable,
               *, evaluator: Callable | None = None, eval_every: int = 0, resume: bool = False,
               quiet: bool = False, stop_after: int | None = None, overwrite: bool = False,
               job: str = "grpo") -> dict:
    """Train with GRPO; returns the summary (also written to RUN_DIR/summary.json).

    `score_completions(prompts, completions, fields) -> (rewards, metrics[, per-function values])`
    scores a batch; the pipelines pass `r1lab.rewards.scorer(functions)`, which contains failing
    reward functions and also returns each function's values (they go to the completions table).

    `evaluator(model, tokenizer) -> dict` runs before training, every `eval_every` steps and at
    the end. `stop_after` ends the run early after that many steps (as a kill would), leaving
    its checkpoint for `--resume`. `job` names the run (its config.yaml, its progress bar).
    """
    seed_everything(config.seed)
    if not items:
        raise ValueError("GRPO needs at least one training prompt")
    loaded = load_model(config.model, reference=config.beta > 0, device=config.device, dtype=config.dtype,
                        lora=config.lora, gradient_checkpointing=config.gradient_checkpointing)
    run = learner_run(run_dir, job, config, resume=resume, overwrite=overwrite)
    policy, tokenizer, reference = loaded.policy, loaded.tokenizer, loaded.reference
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=config.lr,
                                  betas=config.adam_betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_then_decay(
        step, config.steps, config.warmup_steps, config.lr_schedule))
    stream = PromptStream(items, config.seed)
    sampler = torch.Generator(device=loaded.device).manual_seed(config.seed)
    start_step, history, evaluations = 0, [], []
    if resume:
        state = run.load_checkpoint()
        policy.load_state_dict(state["policy"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        stream.restore(state["stream"])
        sampler.set_state(state["sampler"])
        set_rng_state(state["rng"])
        if state.get("reference") is not None:
            reference.load_state_dict(state["reference"])
        start_step, history, evaluations = state["step"], state["history"], state["evaluations"]
    elif evaluator is not None:
        evaluations.append({"step": 0, **evaluator(policy, tokenizer)})
        run.log(0, _eval_metrics(evaluations[-1]))

    sampling = SamplingSettings(config.max_new_tokens, config.temperature, config.top_p, config.top_k)
    # where completions are sampled and scored: here, or on generation workers (backend=ray)
    pool = sampling_pool(config, policy, tokenizer, sampling, sampler, text_scorer(score_completions))
    policy.train()
    step = start_step
    with ProgressBar(config.steps, job, enabled=not quiet) as bar, pool:
        bar.advance(start_step)
        for step in range(start_step + 1, config.steps + 1):
            started = time.perf_counter()
            batch, sampling_metrics = collect(policy, tokenizer, stream, score_completions, sampling, sampler, config,
                                              pool=pool, version=step - 1)  # weights version: updates so far
            collected = time.perf_counter()
            learn_metrics = improve(policy, reference, optimizer, batch, config) if batch is not None else {}
            scheduler.step()
            if config.ref_reset_every and reference is not None and step % config.ref_reset_every == 0:
                reference.load_state_dict(policy.state_dict())
            finished = time.perf_counter()

            metrics = {**sampling_metrics, **learn_metrics, "lr": scheduler.get_last_lr()[0],
                       "time/scoring": collected - started - sampling_metrics["time/generation"],
                       "time/learning": finished - collected, "time/step": finished - started}
            if evaluator is not None and eval_every and step % eval_every == 0 and step < config.steps:
                evaluations.append({"step": step, **evaluator(policy, tokenizer)})
                metrics.update(_eval_metrics(evaluations[-1]))
            run.log(step, metrics)
            history.append({k: metrics.get(k) for k in ("reward", "time/step")})
            if batch is not None and config.log_samples_every and step % config.log_samples_every == 0:
                _log_samples(run, step, batch)
            bar.advance(1, info=f"reward {metrics.get('reward', float('nan')):.3f}")
            if run.checkpoint_due(step, last=step == config.steps) or step == stop_after:
                run.save_checkpoint(step, {
                    "policy": policy.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "stream": stream.state(), "sampler": sampler.get_state(),
                    "rng": rng_state(), "step": step, "history": history, "evaluations": evaluations,
                    "reference": reference.state_dict() if reference is not None and config.ref_reset_every else None,
                })
            if step == stop_after:
                run.close()
                return {"stopped_at": step}
            run.stop_if_requested(step)

    if evaluator is not None:
        evaluations.append({"step": step, **evaluator(policy, tokenizer)})
        run.log(step, _eval_metrics(evaluations[-1]))
    if config.save_model:
        policy.save_pretrained(run.dir / "model")
        tokenizer.save_pretrained(run.dir / "model")
    rewards = [h["reward"] for h in history if h["reward"] is not None]
    window = max(1, min(10, len(rewards) // 5))
    summary = {
        "steps": step, "wall_seconds": run.elapsed,
        "seconds_per_step_median": statistics.median(h["time/step"] for h in history),
        "reward_first": sum(rewards[:window]) / window if rewards else None,
        "reward_last": sum(rewards[-window:]) / window if rewards else None,
        "evaluations": evaluations, "final_evaluation": evaluations[-1] if evaluations else None,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **pool.summary(),
        "config": to_dict(config),
    }
    run.write_summary(summary)
    run.close()
    return summary


def collect(policy, tokenizer, stream, score_completions, sampling, sampler, config, pool=None,
            version: int = 0) -> tuple[Batch | None, dict]:
    """Steps 1-3: sample groups, score them, and compute group-relative advantages.

    With dynamic sampling, groups whose rewards are all equal (zero advantage, no signal) are
    dropped and more prompts are sampled, up to `max_sampling_rounds` rounds. `pool` samples and
    scores (r1lab.scale.sampling; default: in this process with `sampler`), with the policy's
    weights `version` (the learner's updates so far).
    """
    pool = pool or LocalSampler(policy, tokenizer, sampling, sampler, text_scorer(score_completions))
    G, kept, generation_seconds, all_rewards, zero_var, rounds = config.group_size, [], 0.0, [], [], 0
    reward_metrics: dict = {}
    while len(kept) < config.prompts_per_step and rounds < (config.max_sampling_rounds if config.dynamic_sampling else 1):
        rounds += 1
        items = [item for item in stream.take(config.prompts_per_step) for _ in range(G)]
        prompts = [apply_template(config.template, item.question, tokenizer) for item in items]
        fields = _item_fields(items)
        completions, scores, seconds = pool.sample(prompts, fields, version=version, group_size=G)
        generation_seconds += seconds
        rewards, reward_metrics, *by_function = scores
        by_function = by_function[0] if by_function else {}
        rewards = torch.tensor(rewards, dtype=torch.float32)
        if config.overlong_buffer:
            rewards = rewards + overlong_penalty(completions.lengths.cpu(), config.max_new_tokens,
                                                 config.overlong_buffer, config.overlong_penalty)
        all_rewards.append(rewards)
        informative = group_reward_std(rewards, G) > 0
        zero_var.append(1.0 - informative.float().mean().item())
        for g in range(len(items) // G):
            if informative[g] or not config.dynamic_sampling:
                parts = {name: values[g * G : (g + 1) * G] for name, values in by_function.items()}
                kept.append((items[g * G : (g + 1) * G], prompts[g * G : (g + 1) * G], completions, g, rewards, parts))
    rewards_seen = torch.cat(all_rewards)
    metrics = {
        "reward": rewards_seen.mean().item(), "reward_std": rewards_seen.std().item() if rewards_seen.numel() > 1 else 0.0,
        "zero_variance_groups": zero_var[0], "sampling_rounds": rounds, **reward_metrics,
        "time/generation": generation_seconds, **pool.metrics(),
    }
    if "rewards/accuracy/mean" in reward_metrics:
        metrics["accuracy"] = reward_metrics["rewards/accuracy/mean"]
    if "rewards/format/mean" in reward_metrics:
        metrics["format_rate"] = reward_metrics["rewards/format/mean"]
    if not kept:
        return None, metrics
    kept = kept[: config.prompts_per_step]
    batch = _merge_groups(kept, G, config)
    lengths = batch.completions.lengths
    metrics.update({"completion_length/mean": lengths.mean().item(), "completion_length/min": lengths.min().item(),
                    "completion_length/max": lengths.max().item(),
                    "truncated_share": batch.completions.truncated.float().mean().item()})
    return batch, metrics


def improve(policy, reference, optimizer, batch: Batch, config: GRPOConfig) -> dict:
    """Step 4: mu optimiser steps on the clipped per-token objective, micro-batch by micro-batch."""
    c = batch.completions
    mask = c.completion_mask * (~c.truncated).float()[:, None] if config.mask_truncated else c.completion_mask
    size = c.completion_ids.shape[0]
    advantages = batch.advantages.to(c.logprobs.device)[:, None]
    total_tokens = mask.sum().clamp(min=1)
    micro_batches = micro_batch_rows(c.completion_mask, config)
    learner = current_learner()  # a data-parallel learner's rank takes its share of every micro-batch
    micro_batches = learner.shard_micro_batches(micro_batches, whole=config.loss_type == "bnpo")
    reference_started = time.perf_counter()
    ref_logprobs = None
    if config.beta > 0:
        ref_logprobs = logprobs_by_micro_batch(reference, c, micro_batches, config.temperature)
    reference_seconds = time.perf_counter() - reference_started
    # with mu > 1, pi_old is the policy before the first pass, computed by the training forward
    # itself, micro-batch by micro-batch in the shapes the passes use: the first pass's ratio is
    # then exactly 1. The sampler's log-probs come from other kernels (and in bf16 other
    # roundings), so taking them as pi_old would clip tokens for numerical reasons alone.
    old_logprobs = logprobs_by_micro_batch(policy, c, micro_batches, config.temperature) if config.num_iterations > 1 else None
    sums = {"loss": 0.0, "clip_fraction": 0.0, "kl": 0.0, "entropy": 0.0, "grad_norm": 0.0}
    for _ in range(config.num_iterations):
        optimizer.zero_grad(set_to_none=True)
        prompts = PromptPass(policy, c.prompt_ids, c.prompt_mask, requires_grad=True) if shares_prompts(policy) else None
        for index, rows in enumerate(micro_batches):
            logprobs, entropy, width = micro_batch_logprobs(policy, c, rows, prompts, config.temperature,
                                                            with_entropy=True)
            row_mask = mask[rows, :width]
            # with mu = 1 the old policy is the current one: ratio = 1 in value, not in gradient
            old = logprobs.detach() if old_logprobs is None else old_logprobs[index]
            ref = ref_logprobs[index] if ref_logprobs is not None else None
            loss, terms, kl = grpo_loss(logprobs, old, advantages[rows], row_mask, config, ref,
                                        num_tokens=total_tokens if config.loss_type == "dapo" else None)
            share = len(rows) / size
            if kl is not None:
                sums["kl"] += masked_mean(kl.detach(), row_mask).item() * share
            weight = 1.0 if config.loss_type == "dapo" else share
            (loss * weight).backward()
            sums["loss"] += loss.item() * weight
            sums["clip_fraction"] += masked_mean(terms.clipped.float(), row_mask).item() * share
            sums["entropy"] += masked_mean(entropy, row_mask).item() * share
        if prompts is not None:
            prompts.backward()  # the prompts' share of the gradient, gathered from every micro-batch
        learner.all_reduce_gradients(policy.parameters())  # the ranks' shares summed: the whole batch's gradient
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
        if not math.isfinite(float(grad_norm)):
            raise FloatingPointError("GRPO: the gradient norm is not finite; lower lr or check the rewards")
        sums["grad_norm"] += float(grad_norm)
        optimizer.step()
    sums = learner.all_reduce_sums(sums, skip=("grad_norm",))
    return {**{key: value / config.num_iterations for key, value in sums.items()}, "time/reference": reference_seconds}


def micro_batch_rows(completion_mask: torch.Tensor, config: GRPOConfig) -> list[torch.Tensor]:
    """The step's micro-batches. Every loss type but bnpo sums over rows, so rows may be grouped
    by completion length and each micro-batch cut to its own width (little compute on padding);
    bnpo's token mean is per micro-batch by definition, so its micro-batches keep the sampled
    order, and their composition does not depend on length."""
    if config.loss_type == "bnpo":
        return list(torch.arange(completion_mask.shape[0]).split(config.micro_batch_size))
    return padding_aware_micro_batches(completion_mask, config.micro_batch_size)


def micro_batch_logprobs(model, c: Completions, rows: torch.Tensor, prompts: PromptPass | None, temperature: float,
                         with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Log-probs (and entropy) of these rows' completions, cut to their real width, and the width;
    their prompts from the batch's `prompts` pass when there is one, else run with them."""
    if prompts is None:
        prompt_ids, prompt_mask, completion_ids, completion_mask, width = trimmed(c, rows)
        logprobs, entropy = token_logprobs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                           temperature=temperature, with_entropy=with_entropy)
        return logprobs, entropy, width
    width = max(1, int(c.completion_mask[rows].sum(1).max()))
    logprobs, entropy = completion_logprobs_after(prompts, rows, c.completion_ids[rows, :width],
                                                  c.completion_mask[rows, :width], temperature=temperature,
                                                  with_entropy=with_entropy)
    return logprobs, entropy, width


@torch.no_grad()
def logprobs_by_micro_batch(model, c: Completions, micro_batches: list[torch.Tensor], temperature: float):
    """`model`'s log-probs of the batch (no gradient), one (rows, width) tensor per micro-batch."""
    prompts = PromptPass(model, c.prompt_ids, c.prompt_mask, requires_grad=False) if shares_prompts(model) else None
    return [micro_batch_logprobs(model, c, rows, prompts, temperature)[0] for rows in micro_batches]


def grpo_loss(logprobs, old_logprobs, advantages, mask, config: GRPOConfig, ref_logprobs=None, num_tokens=None):
    """The GRPO objective of one micro-batch, to minimise; shapes (B, T), advantages (B, 1).

        loss_t = -min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A) + beta * KL_t,
        rho_t = pi(o_t) / pi_old(o_t),   KL_t = k3(pi || pi_ref)

    aggregated over tokens by the loss type (see r1lab.core.aggregate_loss). Returns
    (loss, surrogate terms, per-token KL or None).
    """
    terms = clipped_surrogate(logprobs, old_logprobs, advantages, config.clip_low, config.clip_high)
    per_token, kl = terms.loss, None
    if ref_logprobs is not None and config.beta > 0:
        kl = kl_estimate(logprobs, ref_logprobs, config.kl_estimator)
        per_token = per_token + config.beta * kl
    loss = aggregate_loss(per_token, mask, config.aggregation, max_length=config.max_new_tokens, num_tokens=num_tokens)
    return loss, terms, kl


def length_sorted_micro_batches(completion_mask: torch.Tensor, micro: int) -> list[torch.Tensor]:
    """Row indices in micro-batches of at most `micro`, rows sorted by completion length."""
    order = torch.argsort(completion_mask.sum(1), stable=True)
    return list(order.split(micro))


MICRO_BATCH_COST = 64  # one more forward and backward's fixed cost, in completion tokens of work (small models)


def padding_aware_micro_batches(completion_mask: torch.Tensor, micro: int,
                                overhead: int = MICRO_BATCH_COST) -> list[torch.Tensor]:
    """Row indices in micro-batches of at most `micro` rows, rows sorted by completion length and
    cut where a cut saves more padding than a micro-batch costs.

    Over rows sorted by length l_1 <= ... <= l_n, the partition minimises
        sum over micro-batches [rows x l_last + overhead]
    (the work of a micro-batch cut to its longest row, plus a fixed cost each), found by dynamic
    programming in O(n x micro). A long tail of a few long completions then gets micro-batches of
    its own instead of widening the rest to its length."""
    lengths = completion_mask.sum(1)
    order = torch.argsort(lengths, stable=True)
    sorted_lengths = [max(1, int(v)) for v in lengths[order].tolist()]
    n = len(sorted_lengths)
    best, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(max(0, end - micro), end):
            cost = best[start] + (end - start) * sorted_lengths[end - 1] + overhead
            if cost < best[end]:
                best[end], cut[end] = cost, start
    bounds, end = [], n
    while end > 0:
        bounds.append((cut[end], end))
        end = cut[end]
    return [order[start:end] for start, end in reversed(bounds)]


def trimmed(c: Completions, rows: torch.Tensor):
    """The rows' prompt and completion tensors without the columns that are padding in all of them
    (prompts are left-padded, completions right-padded). Returns them and the completion width."""
    prompt_mask, completion_mask = c.prompt_mask[rows], c.completion_mask[rows]
    prompt_start = prompt_mask.shape[1] - int(prompt_mask.sum(1).max())
    width = max(1, int(completion_mask.sum(1).max()))
    return (c.prompt_ids[rows, prompt_start:], prompt_mask[:, prompt_start:], c.completion_ids[rows, :width],
            completion_mask[:, :width], width)


def _item_fields(items: list[TaskItem]) -> dict[str, list]:
    """What reward functions receive besides prompts and completions: every field of the items,
    their ground truth (`answer`) and the task each came from (`task`, unless a field says otherwise)."""
    keys = sorted({key for item in items for key in item.fields})
    fields = {key: [item.fields.get(key) for item in items] for key in keys}
    fields["answer"] = [item.answer for item in items]
    fields.setdefault("task", [item.task for item in items])
    return fields


def _merge_groups(kept, G: int, config: GRPOConfig) -> Batch:
    """Stack the kept groups (possibly from several sampling rounds) into one padded batch."""
    rows, items, prompts, rewards, reward_parts = [], [], [], [], {}
    for group_items, group_prompts, completions, g, round_rewards, parts in kept:
        rows.append((completions, slice(g * G, (g + 1) * G)))
        items += group_items
        prompts += group_prompts
        for name, values in parts.items():
            reward_parts.setdefault(name, []).extend(values)
        rewards.append(round_rewards[g * G : (g + 1) * G])
    rewards = torch.cat(rewards)
    prompt_width = max(c.prompt_ids.shape[1] for c, _ in rows)
    completion_width = max(c.completion_ids.shape[1] for c, _ in rows)
    pad = lambda t, width, left, value=0: torch.nn.functional.pad(t, (width - t.shape[1], 0) if left else (0, width - t.shape[1]), value=value)  # noqa: E731
    pad_id = 0
    merged = Completions(
        prompt_ids=torch.cat([pad(c.prompt_ids[s], prompt_width, True, pad_id) for c, s in rows]),
        prompt_mask=torch.cat([pad(c.prompt_mask[s], prompt_width, True) for c, s in rows]),
        completion_ids=torch.cat([pad(c.completion_ids[s], completion_width, False, pad_id) for c, s in rows]),
        completion_mask=torch.cat([pad(c.completion_mask[s], completion_width, False) for c, s in rows]),
        logprobs=torch.cat([pad(c.logprobs[s], completion_width, False) for c, s in rows]),
        texts=[t for c, s in rows for t in c.texts[s]],
        truncated=torch.cat([c.truncated[s] for c, s in rows]),
    )
    advantages = group_advantages(rewards, G, scale=config.scale_rewards)
    return Batch(items, prompts, merged, rewards, advantages, reward_parts)


def _log_samples(run: Run, step: int, batch: Batch) -> None:
    """Rows of the completions table (samples.jsonl): the first completion of every logged prompt,
    with its total reward, each reward function's value and its advantage."""
    lengths, truncated = batch.completions.lengths, batch.completions.truncated
    for i in range(0, len(batch.prompts), max(1, len(batch.prompts) // 8)):
        run.append_jsonl("samples.jsonl", {
            "step": step, "question": batch.items[i].question, "completion": batch.completions.texts[i],
            "reward": batch.rewards[i].item(), "rewards": {name: values[i] for name, values in batch.reward_parts.items()},
            "advantage": batch.advantages[i].item(), "answer": batch.items[i].answer,
            "completion_tokens": int(lengths[i]), "truncated": bool(truncated[i])})


def _eval_metrics(evaluation: dict) -> dict:
    return {f"eval/{k}": v for k, v in evaluation.items() if isinstance(v, (int, float)) and k != "step"}
