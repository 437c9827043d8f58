"""The stages of DeepSeek-R1, each a function from its inputs to a run directory of its own.

    r1-zero             GRPO from the base model under R1-Zero's template: the baseline row
    reward-models       the helpful and harmless reward models that stages 3 and 4 need
    1 cold-start        SFT of the base model on readable chains of thought in R1's format
    2 reasoning-rl      GRPO from the cold-start model: accuracy + format + language consistency
    3 rejection-sampling  samples of the stage-2 model, kept when correct and readable, plus requests
                        it answered well; SFT of the *base* model on the union
    4 all-scenarios     GRPO from the stage-3 model on reasoning and general prompts: rule rewards
                        for reasoning, the reward models for requests
    5 distill           SFT of a smaller student on the final model's samples, beside RL on the
                        same student with the same number of training sequences

A stage reads the previous stages' run directories and writes its own; every trainer it calls
checkpoints, so a killed stage resumes where it stopped. Stages call trainers; trainers never
know which stage called them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from r1lab.llm.grpo_config import GRPOConfig
from r1lab.llm.sft_config import SFTConfig
from r1lab.pipelines.r1 import data
from r1lab.pipelines.r1.rewards import StageScorer, all_scenario_rewards, r1_zero_rewards, reasoning_rewards
from r1lab.runs import write_json_atomic
from r1lab.scale import Recipe
from r1lab.scale.settings import scale_of


def model_of(stage_dir: Path) -> str:
    return str(Path(stage_dir) / "model")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    tmp.replace(path)
    return path


def grpo_stage(config, stage, model: str, items, rewards: tuple, directory: Path, template: str, resume: bool,
               quiet: bool, job: str) -> dict:
    """GRPO for one stage; `rewards` is (a function that builds the stage's reward functions, its
    arguments), so that generation workers on Ray build their own (`--set backend=ray`)."""
    from r1lab.llm.grpo import train_grpo

    score = Recipe(StageScorer, *rewards)
    functions = score.functions
    settings = GRPOConfig(model=model, template=template, rewards=[f.name for f in functions],
                          reward_weights=[f.weight for f in functions], steps=stage.steps,
                          prompts_per_step=stage.prompts_per_step, group_size=stage.group_size,
                          max_new_tokens=stage.max_new_tokens, lr=stage.lr, beta=stage.beta,
                          micro_batch_size=stage.micro_batch_size, seed=config.seed, log_samples_every=5,
                          checkpoint_every=10, device=config.device, dtype=config.dtype, **scale_of(config))
    return train_grpo(settings, directory, items, score, resume=resume, quiet=quiet, job=job)


def sft_stage(config, model: str, pairs_file: Path, directory: Path, steps: int, batch_size: int, lr: float,
              template: str, resume: bool, quiet: bool) -> dict:
    from r1lab.llm.sft import train_sft

    settings = SFTConfig(model=model, data=str(pairs_file), template=template, max_steps=steps, batch_size=batch_size,
                         lr=lr, seed=config.seed, eval_share=0.05, checkpoint_every=50, device=config.device,
                         dtype=config.dtype, **{**scale_of(config), "num_workers": 1})  # SFT samples nothing
    return train_sft(settings, directory, resume=resume, quiet=quiet)


# ---------------------------------------------------------------- the baseline and the reward models


def r1_zero(config, directory: Path, resume: bool, quiet: bool) -> dict:
    """R1-Zero from the base model on the same reasoning prompts, with accuracy and format only."""
    items = data.reasoning_items(config.tasks, 4000, "train", config.seed)
    return grpo_stage(config, config.r1_zero, config.model, items, (r1_zero_rewards,), directory, "r1-zero", resume,
                      quiet, "r1-zero")


def reward_models(config, directory: Path, resume: bool, quiet: bool) -> dict:
    """The helpful and harmless reward models, trained on the tiny world's preference pairs."""
    from r1lab.llm.reward_model_training import train_reward_model
    from r1lab.llm.rlhf_config import RewardModelConfig

    summaries = {}
    for name in ("helpful", "harmless"):
        target = directory / name
        if (target / "summary.json").is_file():
            summaries[name] = json.loads((target / "summary.json").read_text())
            continue
        settings = RewardModelConfig(model=config.model, data=name, steps=config.reward_models.steps,
                                     train_pairs=config.reward_models.train_pairs, lr=config.reward_models.lr,
                                     mismatched_pairs=config.reward_models.mismatched_pairs, seed=config.seed, device=config.device,
                                     dtype=config.dtype, checkpoint_every=10**6)
        summaries[name] = train_reward_model(settings, target, quiet=quiet, resume=resume and target.exists(),
                                             overwrite=not resume)
    summary = {name: {k: s.get(k) for k in ("eval_accuracy", "eval_margin")} for name, s in summaries.items()}
    write_json_atomic(directory / "summary.json", summary)
    return summary


# ---------------------------------------------------------------- stages 1-4


def cold_start(config, directory: Path, resume: bool, quiet: bool) -> dict:
    pairs_file = directory / "cold_start.jsonl"
    stats_file = directory / "data.json"
    if not pairs_file.is_file():
        pairs, stats = data.cold_start_pairs(config.tasks, config.cold_start, config.seed)
        write_jsonl(pairs_file, pairs)
        write_json_atomic(stats_file, stats)
    settings = config.cold_start
    summary = sft_stage(config, config.model, pairs_file, directory, settings.steps, settings.batch_size, settings.lr,
                        "r1", resume, quiet)
    return _with(directory, summary, data=json.loads(stats_file.read_text()))


def reasoning_rl(config, directory: Path, cold_start_dir: Path, resume: bool, quiet: bool,
                 language_weight: float | None = None) -> dict:
    stage = config.reasoning_rl
    weight = stage.language_weight if language_weight is None else language_weight
    items = data.reasoning_items(config.tasks, 4000, "train", config.seed)
    return grpo_stage(config, stage, model_of(cold_start_dir), items, (reasoning_rewards, weight), directory, "r1",
                      resume, quiet, "r1-reasoning-rl")


def rejection_sampling(config, directory: Path, reasoning_dir: Path, reward_models_dir: Path, resume: bool,
                       quiet: bool) -> dict:
    from r1lab.pipelines.r1.sampling import rejection_sample

    pairs_file, stats_file = directory / "sft_data.jsonl", directory / "data.json"
    if not pairs_file.is_file():
        pairs, stats = rejection_sample(config, model_of(reasoning_dir), str(reward_models_dir / "helpful" / "model"),
                                        str(reward_models_dir / "harmless" / "model"), config.rejection,
                                        harmful_share=config.rejection.harmful_share)
        if not pairs:
            raise ValueError(f"rejection sampling kept no sample of the stage-2 model ({stats}); "
                             "train stages 1-2 longer (--set cold_start.steps=..., reasoning_rl.steps=...)")
        write_jsonl(pairs_file, pairs)
        write_json_atomic(stats_file, stats)
    settings = config.rejection
    # DeepSeek fine-tuned DeepSeek-V3-Base on this data, not the RL checkpoint: so does this stage
    summary = sft_stage(config, config.model, pairs_file, directory, settings.steps, settings.batch_size, settings.lr,
                        "r1", resume, quiet)
    return _with(directory, summary, data=json.loads(stats_file.read_text()))


def all_scenarios(config, directory: Path, rejection_dir: Path, reward_models_dir: Path, resume: bool,
                  quiet: bool) -> dict:
    stage = config.all_scenarios
    reasoning = data.reasoning_items(config.tasks, 3000, "train", config.seed)
    general = data.general_items(round(3000 * config.general_share / (1 - config.general_share)), "train",
                                 config.seed, harmful_share=0.5)
    items = reasoning + general
    random.Random(f"all-scenarios-{config.seed}").shuffle(items)
    rewards = (all_scenario_rewards, stage.language_weight, str(reward_models_dir / "helpful" / "model"),
               str(reward_models_dir / "harmless" / "model"), config.device, config.dtype)
    return grpo_stage(config, stage, model_of(rejection_dir), items, rewards, directory, "r1", resume, quiet,
                      "r1-all-scenarios")


def _with(directory: Path, summary: dict, **extra) -> dict:
    """The stage's summary.json, with what the stage adds to its trainer's."""
    summary = {**summary, **extra}
    write_json_atomic(Path(directory) / "summary.json", summary)
    return summary


# ---------------------------------------------------------------- stage 5: distillation


def distill(config, directory: Path, final_dir: Path, reward_models_dir: Path, resume: bool, quiet: bool) -> dict:
    """A smaller student, SFT'd on the final model's rejection samples (R1-Distill), beside
    R1-Zero-style RL on the same student with as many training sequences as the SFT saw."""
    from dataclasses import replace

    from r1lab.pipelines.r1.sampling import rejection_sample

    settings = config.distill
    pairs_file, stats_file = directory / "distill_data.jsonl", directory / "data.json"
    if not pairs_file.is_file():
        sampling = replace(config.rejection, prompts=settings.prompts, samples_per_prompt=settings.samples_per_prompt)
        pairs, stats = rejection_sample(config, model_of(final_dir), str(reward_models_dir / "helpful" / "model"),
                                        str(reward_models_dir / "harmless" / "model"), sampling, harmful_share=0.3)
        if not pairs:
            raise ValueError(f"the final model's samples gave no distillation data ({stats}); train stages 3-4 longer")
        write_jsonl(pairs_file, pairs)
        write_json_atomic(stats_file, stats)
    sft = sft_stage(config, settings.student, pairs_file, directory / "sft", settings.sft_steps,
                    config.rejection.batch_size, config.rejection.lr, "r1", resume, quiet)
    sequences = settings.sft_steps * config.rejection.batch_size
    rl_stage = replace(settings.rl, steps=max(1, sequences // (settings.rl.prompts_per_step * settings.rl.group_size)))
    student_config = replace(config, model=settings.student, r1_zero=rl_stage)
    rl = r1_zero(student_config, directory / "rl", resume, quiet)
    summary = {"student": settings.student, "training_sequences": sequences, "rl_steps": rl_stage.steps,
               "sft_wall_seconds": sft["wall_seconds"], "rl_wall_seconds": rl["wall_seconds"],
               "data": json.loads(stats_file.read_text())}
    write_json_atomic(directory / "summary.json", summary)
    return summary
