"""`r1lab rlhf`: the whole of RLHF with PPO on the tiny world, from the base model to an aligned one.

1. the reward models: unless `reward_model` names one, train a helpfulness RM (benign requests:
   good answer over bad) and a harmlessness RM (harmful requests: refusal over compliance),
   each into RUN_DIR/reward-models/NAME;
2. PPO (`r1lab.llm.rlhf`): prompts are the tiny world's requests, benign and harmful; a benign
   prompt is scored by the helpfulness RM, a harmful one by the harmlessness RM (Llama 2's
   split, each RM normalised by its own statistics);
3. held-out evaluation before and after (and every `eval_every` steps), by the task's own rule
   checks, not by the RMs: `helpful_rate` (benign replies that `is_helpful` accepts),
   `harmless_rate` (harmful requests refused), `over_refusal_rate` (benign requests refused) of
   one greedy reply per request, as `r1lab eval-llm` reports them; the same of `eval_k` replies
   sampled at `eval_temperature` (`sampled_helpful_rate`, ...); and the RMs' score and the KL to
   the reference of the sampled replies.

Why two RMs routed by the prompt rather than one RM or their sum: the harmlessness pairs only
ever compare a refusal with a compliance, so that RM learns "refusing is good" and says nothing
true about benign requests; summed with the helpfulness RM it pays the policy to refuse
everything. Routed, each RM only judges the requests it was trained on. A dataset of your own
prompts can route the same way through a boolean field (`safety_field`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from r1lab.llm.rlhf_config import RewardModelConfig, RLHFConfig
from r1lab.runs.config import require
from r1lab.scale.recipe import Recipe

logger = logging.getLogger("r1lab.pipelines")
TINY_WORLD_TASKS = ("general", "chat", "harmful")
TABLE_KEYS = ("helpful_rate", "harmless_rate", "over_refusal_rate", "sampled_helpful_rate", "sampled_harmless_rate",
              "sampled_over_refusal_rate", "rm_score", "kl", "mean_length", "eos_share")
CURVES = ["rm_score", "kl", "kl_penalised_return", "value_loss", "explained_variance", "clip_fraction", "entropy",
          "completion_length/mean", "eos_share", "beta", "eval/helpful_rate", "eval/harmless_rate",
          "eval/sampled_helpful_rate", "eval/sampled_harmless_rate", "eval/rm_score", "eval/kl"]


@dataclass
class RewardModelTraining:
    """How `r1lab rlhf` trains the reward models it needs (see `RewardModelConfig` for each key)."""

    model: str | None = None  # default: the policy's model, so that the critic can start from the RM
    helpful_steps: int = 600  # judging a benign answer is the harder task: names, gifts, animals, counts
    harmless_steps: int = 60  # a refusal against a compliance is learnt in a few steps
    batch_size: int = 32
    lr: float = 3e-4
    train_pairs: int = 4000
    eval_pairs: int = 200
    mismatched_pairs: float = 1.0  # extra pairs whose rejected answer is another request's chosen one
    center_rewards_coef: float = 0.0


@dataclass
class RLHFJobConfig(RLHFConfig):
    """RLHF-PPO's settings, plus the reward models it trains and the held-out evaluation (`r1lab rlhf`)."""

    reward_model_training: RewardModelTraining = field(default_factory=RewardModelTraining)
    # 4 replies to each of 8 requests rather than 1 to each of 32: the batch then holds right and
    # wrong names for the same request, the contrast that teaches the policy to copy a name (one
    # reply per request learnt it on one CPU's seeded path and not on another's)
    prompts_per_step: int = 8
    samples_per_prompt: int = 4
    eval_items: int = 100  # held-out benign requests, and as many harmful ones
    eval_k: int = 2  # sampled replies per request
    eval_temperature: float = 1.0
    eval_every: int = 0
    eval_batch_size: int = 128

    def __post_init__(self):
        super().__post_init__()
        require(self.eval_items >= 1 and self.eval_k >= 1, "eval_items", "and eval_k must be >= 1")


def reward_model_dirs(run_dir: Path) -> dict[str, Path]:
    return {name: Path(run_dir) / "reward-models" / name for name in ("helpful", "harmless")}


def train_needed_reward_models(config: RLHFJobConfig, run_dir: Path, quiet: bool = False) -> tuple[RLHFJobConfig, dict]:
    """The config with `reward_model` (and `safety_reward_model`) set, training the helpful and
    harmless RMs into RUN_DIR/reward-models first when none is given; RMs already trained there
    are reused (so `--resume`, whose config.yaml records no reward model, finds them again)."""
    if config.reward_model:
        return config, {}
    from r1lab.llm.reward_model_training import train_reward_model

    settings = config.reward_model_training
    summaries = {}
    for name, directory in reward_model_dirs(run_dir).items():
        summary_file = directory / "summary.json"
        if summary_file.is_file() and (directory / "model" / "config.json").is_file():
            summaries[name] = json.loads(summary_file.read_text())
            continue
        steps = settings.helpful_steps if name == "helpful" else settings.harmless_steps
        rm_config = RewardModelConfig(model=settings.model or config.model, data=name, steps=steps,
                                      batch_size=settings.batch_size, lr=settings.lr, train_pairs=settings.train_pairs,
                                      eval_pairs=settings.eval_pairs, center_rewards_coef=settings.center_rewards_coef,
                                      mismatched_pairs=settings.mismatched_pairs,
                                      template="chat" if config.template == "chat" else "plain", seed=config.seed,
                                      device=config.device, dtype=config.dtype, checkpoint_every=10**6)
        if not quiet:
            logger.info("training the %s reward model in %s", name, directory)
        summaries[name] = train_reward_model(rm_config, directory, quiet=quiet, overwrite=True)
    dirs = reward_model_dirs(run_dir)
    return replace(config, reward_model=str(dirs["helpful"] / "model"),
                   safety_reward_model=str(dirs["harmless"] / "model")), summaries


def prompt_items(config: RLHFJobConfig):
    """(training prompts, held-out benign requests, held-out harmful requests, other held-out prompts)."""
    from r1lab.llm.prompts import read_jsonl_prompts
    from r1lab.tasks import ChatTask, HarmfulTask, get_task

    if config.dataset:
        items = read_jsonl_prompts(config.dataset, required=("prompt",))
        if len(items) < 2:
            raise ValueError(f"{config.dataset}: one row cannot be split into training and held-out prompts")
        cut = max(1, len(items) // 10)
        return items[cut:], [], [], items[:cut][: config.eval_items]
    train = get_task(config.task).items(config.train_items, "train", config.seed)
    if config.task not in TINY_WORLD_TASKS:
        return train, [], [], get_task(config.task).items(config.eval_items, "test", config.seed)
    benign = ChatTask().items(config.eval_items, "test", config.seed) if config.task != "harmful" else []
    harmful = HarmfulTask().items(config.eval_items, "test", config.seed) if config.task != "chat" else []
    return train, benign, harmful, []


def make_evaluator(config: RLHFJobConfig, scorer, benign, harmful, others):
    """evaluator(models) -> the held-out figures (see the module docstring): the rule checks of one
    greedy reply per request (as `r1lab eval-llm --task chat` reports them) and of `eval_k` sampled
    ones (`sampled_*`), and the RMs' score and the KL to the reference of the sampled replies (the
    policy's own distribution: the quantities RLHF trades against each other)."""
    import torch

    from r1lab.core import kl_estimate, masked_sum
    from r1lab.llm.generation import SamplingSettings, generate
    from r1lab.llm.grpo import trimmed
    from r1lab.llm.logprobs import token_logprobs
    from r1lab.llm.prompts import apply_template
    from r1lab.tasks.chat import is_helpful, is_refusal

    requests = benign + harmful + others
    greedy = SamplingSettings(config.max_new_tokens, 0.0)
    sampling = SamplingSettings(config.max_new_tokens, config.eval_temperature, config.top_p, config.top_k)

    def rule_checks(items, texts, prefix: str) -> dict:
        benign_pairs = [(t, i) for t, i in zip(texts, items) if i in benign_ids]
        harmful_texts = [t for t, i in zip(texts, items) if i in harmful_ids]
        figures = {}
        if benign_pairs:
            figures[f"{prefix}helpful_rate"] = _mean(is_helpful(t, requests[i]) for t, i in benign_pairs)
            figures[f"{prefix}over_refusal_rate"] = _mean(is_refusal(t) for t, _ in benign_pairs)
        if harmful_texts:
            figures[f"{prefix}harmless_rate"] = _mean(is_refusal(t) for t in harmful_texts)
        return figures

    benign_ids = set(range(len(benign)))
    harmful_ids = set(range(len(benign), len(benign) + len(harmful)))

    def evaluator(models) -> dict:
        policy, tokenizer = models.policy, models.tokenizer
        was_training = policy.training
        policy.eval()
        generator = torch.Generator(device=models.device).manual_seed(config.seed + 12345)
        greedy_texts, sampled_ids, sampled_texts, scores, kls, lengths, ended = [], [], [], [], [], [], []
        for start in range(0, len(requests), config.eval_batch_size):
            ids = list(range(start, min(start + config.eval_batch_size, len(requests))))
            prompts = [apply_template(config.template, requests[i].question, tokenizer) for i in ids]
            greedy_texts += generate(policy, tokenizer, prompts, greedy).texts
            ids, prompts = [i for i in ids for _ in range(config.eval_k)], [p for p in prompts for _ in range(config.eval_k)]
            completions = generate(policy, tokenizer, prompts, sampling, generator)
            chunk_scores, _ = scorer([requests[i] for i in ids], prompts, completions)
            *tensors, _ = trimmed(completions, torch.arange(len(ids)))
            with torch.no_grad():
                logprobs = token_logprobs(policy, *tensors, temperature=config.temperature)[0]
                ref = (models.reference_logprobs(*tensors, temperature=config.temperature) if models.with_reference
                       else logprobs)
            kls.append(masked_sum(kl_estimate(logprobs, ref, "k1"), tensors[3], dim=1).cpu())
            sampled_ids += ids
            sampled_texts += completions.texts
            scores.append(chunk_scores.cpu())
            lengths.append(completions.lengths.float().cpu())
            ended.append((~completions.truncated).float().cpu())
        policy.train(was_training)
        result = {**rule_checks(range(len(requests)), greedy_texts, ""), **rule_checks(sampled_ids, sampled_texts, "sampled_"),
                  "rm_score": torch.cat(scores).mean().item(), "kl": torch.cat(kls).mean().item(),
                  "mean_length": torch.cat(lengths).mean().item(), "eos_share": torch.cat(ended).mean().item()}
        step = max(1, len(requests) // 8)
        result["examples"] = [{"prompt": requests[i].question, "greedy": greedy_texts[i]} for i in range(0, len(requests), step)]
        return result

    return evaluator


def job_scorer(config: RLHFJobConfig):
    """The job's reward models as one scorer: the helpful one, and the harmless one for harmful requests."""
    from r1lab.llm.loading import load_tokenizer
    from r1lab.llm.reward_model import load_reward_model
    from r1lab.llm.rlhf_models import reward_model_scorer

    primary = load_reward_model(config.reward_model, device=config.device, dtype=config.dtype)
    safety = (load_reward_model(config.safety_reward_model, device=config.device, dtype=config.dtype)
              if config.safety_reward_model else None)
    score = reward_model_scorer(primary, load_tokenizer(config.model), safety=safety, safety_field=config.safety_field,
                                normalize=config.normalize_reward, batch_size=config.micro_batch_size,
                                padding_free=config.padding_free)
    score.reward_memory_mb = primary.memory_mb() + (safety.memory_mb() if safety is not None else 0.0)
    return score


def run_rlhf_job(config: RLHFJobConfig, run_dir: Path, resume: bool = False, quiet: bool = False,
                 stop_after: int | None = None, overwrite: bool = False) -> dict:
    # imported here: the config classes above are read by the CLI's help, which must not pay for torch
    from r1lab.llm.rlhf import train_rlhf
    from r1lab.runs import ConfigError, plot_run, read_metrics, to_dict, write_json_atomic
    from r1lab.runs.run_dir import latest_checkpoint

    run_dir = Path(run_dir)
    train, benign, harmful, others = prompt_items(config)  # bad data stops before anything is trained
    checkpointed = latest_checkpoint(run_dir) is not None
    if not resume and checkpointed and not overwrite:
        raise ConfigError(f"{run_dir} already holds a run with checkpoints; continue it with --resume {run_dir}, "
                          "start it again with --overwrite, or choose a new --run-dir")
    if overwrite and not resume:
        shutil.rmtree(run_dir / "reward-models", ignore_errors=True)
    fresh_after_kill = resume and not checkpointed  # killed while its reward models trained: PPO starts afresh
    if not resume or fresh_after_kill:
        run_dir.mkdir(parents=True, exist_ok=True)  # so that --resume finds the job before PPO has started
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"job": "rlhf", "config": to_dict(config)}, sort_keys=False))
    asked, (config, rm_summaries) = config, train_needed_reward_models(config, run_dir, quiet)
    scorer = Recipe(job_scorer, config)  # each generation worker on Ray loads its own reward models
    evaluator = make_evaluator(config, scorer, benign, harmful, others)
    reward_memory = scorer.reward_memory_mb
    summary = train_rlhf(config, run_dir, train, scorer, evaluator=evaluator, eval_every=config.eval_every,
                         resume=resume and not fresh_after_kill, quiet=quiet, stop_after=stop_after,
                         overwrite=overwrite or fresh_after_kill,
                         extra_memory={"memory/reward_model_mb": reward_memory}, recorded_config=asked)
    if "stopped_at" in summary:
        return summary
    before, after = summary["evaluations"][0], summary["evaluations"][-1]
    summary["before"] = {k: before.get(k) for k in TABLE_KEYS if k in before}
    summary["after"] = {k: after.get(k) for k in TABLE_KEYS if k in after}
    summary["kl"] = after.get("kl")
    summary["examples_after"] = after.get("examples", [])
    summary["reward_models"] = {
        name: {k: s.get(k) for k in ("eval_accuracy", "eval_margin", "reward_mean", "reward_std", "wall_seconds",
                                     "model_dir")} for name, s in rm_summaries.items()}
    summary["wall_seconds_total"] = summary["wall_seconds"] + sum(s.get("wall_seconds", 0.0) for s in rm_summaries.values())
    write_json_atomic(run_dir / "summary.json", summary)
    available = set()
    for record in read_metrics(run_dir):
        available.update(record)
    plot_run(run_dir, [k for k in CURVES if k in available], smooth=3)
    return summary


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0
