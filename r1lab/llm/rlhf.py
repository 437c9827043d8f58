"""RLHF with PPO (seed §3.3): an actor, a critic, a reward model and a frozen reference.

The actor is the language model being aligned; the critic estimates V_t; the reward model,
trained on its own (`r1lab.llm.reward_model`), gives the score R; the reference keeps the actor
from drifting through a KL term. Actor and critic train together, as two models or as one
trunk with two heads. Each step reads top to bottom as the five steps every r1lab learner shares:

1. collect   sample completions of P prompts from the actor
2. score     the reward model's (normalised) score, minus a penalty for completions that never
             end; log-probs of the actor and the reference, and the critic's V_t, from no-grad
             training forwards; r_t = -beta KL_t + score at the last real token
3. estimate  token-level GAE with the critic's values (`core.gae`, as PPO on CartPole calls it),
             advantages whitened over the batch's tokens
4. improve   ppo_epochs passes; each shuffles the batch's micro-batches into num_minibatches
             optimiser steps on clipped surrogate + vf_coef * clipped value loss (- ent_coef * H)
5. record    metrics, sample rows, the adaptive KL coefficient, checkpoints

Every formula is a call into `r1lab.core`; this file only orchestrates. The four models are
built in `r1lab.llm.rlhf_models`.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from r1lab.core import (
    adaptive_kl_controller,
    aggregate_loss,
    clipped_surrogate,
    explained_variance,
    kl_k3,
    kl_penalised_token_rewards,
    masked_mean,
    masked_sum,
    token_level_gae,
    value_loss,
    whiten,
)
from r1lab.llm.generation import Completions, SamplingSettings
from r1lab.llm.grpo import PromptStream, length_sorted_micro_batches, trimmed
from r1lab.llm.prompts import apply_template
from r1lab.llm.rlhf_config import RLHFConfig
from r1lab.llm.rlhf_models import Models, Scorer, build_models
from r1lab.runs import ProgressBar, Run, rng_state, seed_everything, set_rng_state, to_dict, warmup_then_decay
from r1lab.scale.sampling import item_scorer, merge_scores, sampling_pool
from r1lab.tasks.base import TaskItem

# ---------------------------------------------------------------- one step's data


@dataclass
class Rollout:
    """One step's sampled batch and everything estimated from it; per-token tensors are (B, T)."""

    items: list[TaskItem]
    prompts: list[str]
    completions: Completions
    rm_scores: torch.Tensor  # (B,) the scorer's (normalised) score
    scores: torch.Tensor  # (B,) after the missing-EOS penalty: what enters the reward
    old_logprobs: torch.Tensor
    ref_logprobs: torch.Tensor
    old_values: torch.Tensor
    rewards: torch.Tensor
    kl: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    micro_batches: list[torch.Tensor]  # row indices, length-sorted; the unit the PPO epochs shuffle

    @property
    def mask(self) -> torch.Tensor:
        return self.completions.completion_mask


def collect(models: Models, stream: PromptStream, pool, config: RLHFConfig,
            version: int) -> tuple[list[TaskItem], list[str], Completions, tuple, dict]:
    """Step 1: P prompts (each `samples_per_prompt` times) under the template, one completion each,
    scored where they were sampled (in this process, or by generation workers on Ray)."""
    items = [item for item in stream.take(config.prompts_per_step) for _ in range(config.samples_per_prompt)]
    prompts = [apply_template(config.template, item.question, models.tokenizer) for item in items]
    started = time.perf_counter()
    completions, scored, generation = pool.sample(prompts, items, version=version, group_size=config.samples_per_prompt)
    timings = {"time/generation": generation, "time/scoring": time.perf_counter() - started - generation,
               **pool.metrics()}
    return items, prompts, completions, scored, timings


@torch.no_grad()
def score_and_estimate(models: Models, scored: tuple, items, prompts, completions: Completions, beta: float,
                       config: RLHFConfig) -> tuple[Rollout, dict]:
    """Steps 2 and 3: scores, the per-token KL-penalised reward, GAE advantages and returns.
    `scored` is the scorer's `(scores, metrics)` of the batch, computed where it was sampled."""
    timings = {}
    rm_scores, metrics = scored
    rm_scores, metrics = torch.as_tensor(rm_scores).to(models.device), dict(metrics)
    # the EOS trick: an answer cut off by max_new_tokens is not an answer; its score is lowered
    scores = rm_scores - config.missing_eos_penalty * completions.truncated.float()

    mask = completions.completion_mask
    micro_batches = length_sorted_micro_batches(mask, config.micro_batch_size)
    old_logprobs, ref_logprobs, old_values, entropy = (torch.zeros_like(mask) for _ in range(4))
    forward_seconds = reference_seconds = 0.0
    for rows in micro_batches:
        *tensors, width = trimmed(completions, rows)
        started = time.perf_counter()
        logprobs, row_entropy, values = models.actor_forward(*tensors, temperature=config.temperature)
        if values is None:
            values = models.values(*tensors)
        old_logprobs[rows, :width], old_values[rows, :width], entropy[rows, :width] = logprobs, values, row_entropy
        forward_seconds += time.perf_counter() - started
        started = time.perf_counter()
        ref_logprobs[rows, :width] = (models.reference_logprobs(*tensors, temperature=config.temperature)
                                      if models.with_reference else logprobs)  # no reference: KL 0, as GRPO's beta = 0
        reference_seconds += time.perf_counter() - started
    timings.update({"time/forward": forward_seconds, "time/reference": reference_seconds})

    rewards, kl = kl_penalised_token_rewards(scores, old_logprobs, ref_logprobs, mask, beta, config.kl_estimator)
    if config.whiten_rewards:
        rewards = whiten(rewards, mask, shift_mean=False) * mask
    advantages, returns = token_level_gae(rewards, old_values, mask, config.gamma, config.lam)
    advantages = whiten(advantages, mask) * mask
    rollout = Rollout(items, prompts, completions, rm_scores, scores, old_logprobs, ref_logprobs, old_values,
                      rewards, kl, advantages, returns, micro_batches)
    sequence_kl = kl.sum(1)
    real = mask.bool()
    metrics.update({
        "rm_score": rm_scores.mean().item(), "score": scores.mean().item(),
        "kl": sequence_kl.mean().item(), "kl_per_token": masked_mean(kl, mask).item(),
        "non_score_reward": (-beta * sequence_kl).mean().item(),
        "kl_penalised_return": rewards.sum(1).mean().item(),
        "entropy": masked_mean(entropy, mask).item(),
        "explained_variance": explained_variance(old_values[real], returns[real]).item(),
        "value_mean": old_values[real].mean().item(), "return_mean": returns[real].mean().item(),
        "completion_length/mean": completions.lengths.mean().item(),
        "completion_length/min": completions.lengths.min().item(),
        "completion_length/max": completions.lengths.max().item(),
        "eos_share": 1.0 - completions.truncated.float().mean().item(), "beta": beta, **timings,
    })
    return rollout, metrics


# ---------------------------------------------------------------- step 4: the PPO epochs


def improve(models: Models, optimizer: torch.optim.Optimizer, rollout: Rollout, config: RLHFConfig,
            train_policy: bool = True) -> dict:
    """`ppo_epochs` passes over the batch. Each pass shuffles the micro-batches into
    `num_minibatches` optimiser steps; a step's loss is a token mean over its minibatch, its
    micro-batches' gradients summed. `train_policy=False` (the critic's warm-up) trains the critic only."""
    mask = rollout.mask
    count = len(rollout.micro_batches)
    sums: dict[str, float] = {}
    steps = 0
    for _epoch in range(config.ppo_epochs):
        order = torch.randperm(count)
        for minibatch in order.tensor_split(min(config.num_minibatches, count)):
            if minibatch.numel() == 0:
                continue
            micro = [rollout.micro_batches[i] for i in minibatch.tolist()]
            tokens = sum(mask[rows].sum() for rows in micro).clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            for rows in micro:
                for key, value in micro_batch_step(models, rollout, rows, tokens, config, train_policy).items():
                    sums[key] = sums.get(key, 0.0) + value
            sums["grad_norm/critic"] = sums.get("grad_norm/critic", 0.0) + _clip(models.critic_parameters(), config)
            if train_policy:
                sums["grad_norm/actor"] = sums.get("grad_norm/actor", 0.0) + _clip(models.policy_parameters(), config)
            optimizer.step()
            steps += 1
    # token-weighted sums over each minibatch, averaged over the optimiser steps
    metrics = {key: value / steps for key, value in sums.items()}
    metrics["optimizer_steps"] = steps
    return metrics


def micro_batch_step(models: Models, rollout: Rollout, rows: torch.Tensor, tokens: torch.Tensor,
                     config: RLHFConfig, train_policy: bool) -> dict:
    """Forward and backward of one micro-batch's PPO loss, scaled so that a minibatch's micro-batches
    sum to token means over the minibatch:

        loss = -min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)                     (core.clipped_surrogate)
               + vf_coef * 0.5 max((V_t - R_t)^2, (V_old + clip(V_t - V_old, +-c) - R_t)^2)   (core.value_loss)
               - ent_coef * H_t

    A separate critic's loss is backpropagated before the actor's forward, so that only one model's
    activations are held at a time (the gradients are the same: the two models share no weights);
    a shared trunk takes the sum in one backward. Returns the micro-batch's share of the metrics.
    """
    *tensors, width = trimmed(rollout.completions, rows)
    mask = rollout.mask[rows, :width]
    share = (mask.sum() / tokens).item()
    old_values, returns = rollout.old_values[rows, :width], rollout.returns[rows, :width]
    bonus = config.ent_coef > 0 and train_policy
    stats: dict[str, float] = {}
    if models.critic is not None:
        critic_loss = _value_terms(models.values(*tensors), old_values, returns, mask, tokens, share, config, stats)
        (config.vf_coef * critic_loss).backward()
        if train_policy:
            logprobs, entropy, _ = models.actor_forward(*tensors, temperature=config.temperature, with_entropy=bonus,
                                                        entropy_grad=bonus)
            _policy_terms(logprobs, entropy, rollout, rows, width, mask, tokens, share, config, stats).backward()
        return stats
    logprobs, entropy, values = models.actor_forward(*tensors, temperature=config.temperature, with_entropy=bonus,
                                                     entropy_grad=bonus, value_grad=train_policy)
    loss = config.vf_coef * _value_terms(values, old_values, returns, mask, tokens, share, config, stats)
    if train_policy:
        loss = loss + _policy_terms(logprobs, entropy, rollout, rows, width, mask, tokens, share, config, stats)
    loss.backward()
    return stats


def _policy_terms(logprobs, entropy, rollout: Rollout, rows, width: int, mask, tokens, share: float,
                  config: RLHFConfig, stats: dict) -> torch.Tensor:
    """The clipped surrogate (minus the entropy bonus) as this micro-batch's part of the token mean."""
    old_logprobs = rollout.old_logprobs[rows, :width]
    terms = clipped_surrogate(logprobs, old_logprobs, rollout.advantages[rows, :width], config.clip_ratio)
    loss = aggregate_loss(terms.loss, mask, "token_mean", num_tokens=tokens)
    stats.update({"policy_loss": loss.item(),
                  "clip_fraction": masked_mean(terms.clipped.float(), mask).item() * share,
                  "ratio_mean": masked_mean(terms.ratio.detach(), mask).item() * share,
                  "approx_kl": masked_mean(kl_k3(old_logprobs, logprobs.detach()), mask).item() * share})
    if config.ent_coef:
        loss = loss - config.ent_coef * masked_sum(entropy, mask) / tokens
    return loss


def _value_terms(values, old_values, returns, mask, tokens, share: float, config: RLHFConfig,
                 stats: dict) -> torch.Tensor:
    """The (clipped) value loss as this micro-batch's part of the token mean, and the clip fraction."""
    loss = aggregate_loss(value_loss(values, returns, old_values, config.clip_value), mask, "token_mean",
                          num_tokens=tokens)
    stats["value_loss"] = loss.item()
    if config.clip_value is not None:
        detached = values.detach()
        clipped = old_values + torch.clamp(detached - old_values, -config.clip_value, config.clip_value)
        binds = (clipped - returns) ** 2 > (detached - returns) ** 2
        stats["value_clip_fraction"] = masked_mean(binds.float(), mask).item() * share
    return loss


def _clip(parameters: list[torch.nn.Parameter], config: RLHFConfig) -> float:
    if not parameters:
        return 0.0
    norm = float(torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm))
    if not math.isfinite(norm):
        raise FloatingPointError("RLHF: a gradient norm is not finite; lower lr or check the reward model's scores")
    return norm


# ---------------------------------------------------------------- the run


def train_rlhf(config: RLHFConfig, run_dir: str | Path, items: list[TaskItem], scorer: Scorer, *,
               evaluator: Callable[[Models], dict] | None = None, eval_every: int = 0, resume: bool = False,
               quiet: bool = False, stop_after: int | None = None, overwrite: bool = False,
               job: str = "rlhf", extra_memory: dict[str, float] | None = None, recorded_config=None) -> dict:
    """Train the actor and the critic with PPO; returns the summary (also RUN_DIR/summary.json).

    `scorer(items, prompts, completions) -> (scores, metrics)` scores a batch: `reward_model_scorer`
    or `rule_scorer`. `evaluator(models) -> dict` runs before training, every `eval_every` steps
    and at the end. `stop_after` ends the run after that many steps, as a kill would, leaving its
    checkpoint for `resume`. `extra_memory` ({"memory/reward_model_mb": ...}) joins the step metrics.
    `recorded_config` is what config.yaml records (default: `config`), e.g. a job's own settings
    before it filled in the reward models it trained itself.
    """
    seed_everything(config.seed)
    if not items:
        raise ValueError("RLHF needs at least one training prompt")
    models = build_models(config)
    run = Run(run_dir, job, recorded_config or config, resume=resume, overwrite=overwrite)
    groups = [{"params": models.policy_parameters(), "lr": config.lr},
              {"params": models.critic_parameters(), "lr": config.critic_lr or config.lr}]
    optimizer = torch.optim.AdamW(groups, betas=config.adam_betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_then_decay(
        step, config.steps, config.warmup_steps, config.lr_schedule))
    stream = PromptStream(items, config.seed)
    sampler = torch.Generator(device=models.device).manual_seed(config.seed)
    critic = models.critic if models.critic is not None else models.value_head
    beta, start_step, history, evaluations = config.beta, 0, [], []
    if resume:
        state = run.load_checkpoint()
        models.policy.load_state_dict(state["policy"])
        critic.load_state_dict(state["critic"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        stream.restore(state["stream"])
        sampler.set_state(state["sampler"])
        set_rng_state(state["rng"])
        beta, start_step, history, evaluations = state["beta"], state["step"], state["history"], state["evaluations"]
    elif evaluator is not None:
        evaluations.append({"step": 0, **evaluator(models)})
        run.log(0, _eval_metrics(evaluations[-1]))

    memory = {**models.memory_mb(), **(extra_memory or {})}
    sampling = SamplingSettings(config.max_new_tokens, config.temperature, config.top_p, config.top_k)
    models.policy.train()
    step = start_step
    # sampling and scoring: in this process, or on generation workers (`--set backend=ray`)
    pool = sampling_pool(config, models.policy, models.tokenizer, sampling, sampler, item_scorer(scorer),
                         merge=merge_scores)
    with ProgressBar(config.steps, job, enabled=not quiet) as bar, pool:
        bar.advance(start_step)
        for step in range(start_step + 1, config.steps + 1):
            started = time.perf_counter()
            batch_items, prompts, completions, scored, timings = collect(models, stream, pool, config, step - 1)
            generated = time.perf_counter()
            rollout, metrics = score_and_estimate(models, scored, batch_items, prompts, completions, beta, config)
            metrics.update(timings)
            estimated = time.perf_counter()
            metrics.update(improve(models, optimizer, rollout, config, train_policy=step > config.critic_warmup_steps))
            scheduler.step()
            finished = time.perf_counter()
            if config.kl_target is not None:  # 5. record: Ziegler's controller moves beta for the next batch
                beta = adaptive_kl_controller(beta, metrics["kl"], config.kl_target, config.samples_per_step,
                                              config.kl_horizon)
            metrics.update({"lr": scheduler.get_last_lr()[0], "time/collect": generated - started,
                            "time/estimate": estimated - generated, "time/learning": finished - estimated,
                            "time/step": finished - started, **memory, **_peak_memory()})
            if evaluator is not None and eval_every and step % eval_every == 0 and step < config.steps:
                evaluations.append({"step": step, **evaluator(models)})
                metrics.update(_eval_metrics(evaluations[-1]))
            run.log(step, metrics)
            history.append({k: metrics.get(k) for k in ("rm_score", "kl", "time/step")})
            if config.log_samples_every and step % config.log_samples_every == 0:
                _log_samples(run, step, rollout)
            bar.advance(1, info=f"rm {metrics['rm_score']:.3f} kl {metrics['kl']:.2f}")
            if run.checkpoint_due(step, last=step == config.steps) or step == stop_after:
                run.save_checkpoint(step, {
                    "policy": models.policy.state_dict(), "critic": critic.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "stream": stream.state(),
                    "sampler": sampler.get_state(), "rng": rng_state(), "beta": beta, "step": step,
                    "history": history, "evaluations": evaluations})
            if step == stop_after:
                run.close()
                return {"stopped_at": step}
            run.stop_if_requested(step)

    if evaluator is not None:
        evaluations.append({"step": step, **evaluator(models)})
        run.log(step, _eval_metrics(evaluations[-1]))
    if config.save_model:
        models.policy.save_pretrained(run.dir / "model")
        models.tokenizer.save_pretrained(run.dir / "model")
    scores = [h["rm_score"] for h in history]
    window = max(1, min(10, len(scores) // 5))
    summary = {
        "steps": step, "wall_seconds": run.elapsed,
        "seconds_per_step_median": statistics.median(h["time/step"] for h in history),
        "rm_score_first": sum(scores[:window]) / window, "rm_score_last": sum(scores[-window:]) / window,
        "kl_last": history[-1]["kl"], "beta_last": beta,
        "evaluations": evaluations, "final_evaluation": evaluations[-1] if evaluations else None,
        "memory_mb": memory, **pool.summary(), **{k.removeprefix("memory/"): v for k, v in _peak_memory().items()},
        "model_dir": str(run.dir / "model") if config.save_model else None,
        "config": to_dict(recorded_config or config),
    }
    run.write_summary(summary)
    run.close()
    return summary


def _peak_memory() -> dict[str, float]:
    peak = {"memory/peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        peak["memory/peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _log_samples(run: Run, step: int, rollout: Rollout) -> None:
    size = len(rollout.prompts)
    for i in range(0, size, max(1, size // 8)):
        run.append_jsonl("samples.jsonl", {
            "step": step, "question": rollout.items[i].question, "completion": rollout.completions.texts[i],
            "reward": rollout.scores[i].item(), "rm_score": rollout.rm_scores[i].item(),
            "kl": rollout.kl[i].sum().item(), "return": rollout.rewards[i].sum().item(),
            "ended": not bool(rollout.completions.truncated[i]), "answer": rollout.items[i].answer})


def _eval_metrics(evaluation: dict) -> dict:
    return {f"eval/{k}": v for k, v in evaluation.items() if isinstance(v, (int, float)) and k != "step"}
