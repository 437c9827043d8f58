"""DeepSeek-R1-Zero: GRPO with rule rewards straight from a base model, under the paper's template.

No SFT: the base model sees the template, samples G answers per question, and is rewarded for
a correct answer inside <answer> tags (accuracy) and for the <think>/<answer> shape (format).
Held-out evaluation runs before training, every `eval_every` steps and at the end; the job
writes the before/after table to summary.json and the curves to RUN_DIR/plots/.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from r1lab.llm.grpo_config import GRPOConfig
from r1lab.llm.prompts import read_jsonl_prompts
from r1lab.rewards import reward_functions, scorer
from r1lab.runs.config import require
from r1lab.scale.recipe import Recipe
from r1lab.tasks import get_task

logger = logging.getLogger("r1lab.pipelines")
CURVES = ["reward", "accuracy", "format_rate", "completion_length/mean", "eval/accuracy",
          "eval/answer_anywhere_accuracy", "eval/format_rate", "eval/mean_length", "eval/sampled_reflection_rate",
          "eval/sampled_mixing_rate_zh"]
TABLE_KEYS = ["accuracy", "answer_anywhere_accuracy", "format_rate", "mean_length", "pass_at_k", "mixing_rate",
              "mixing_rate_zh", "sampled_mixing_rate_zh", "reflection_rate", "sampled_reflection_rate"]


@dataclass
class GRPOJobConfig(GRPOConfig):
    """GRPO's settings, plus the held-out evaluation (`r1lab grpo`)."""

    eval_dataset: str | None = None  # a JSONL file of held-out prompts; without it, `dataset`'s first 10 %
    eval_items: int = 200
    eval_k: int = 8
    eval_every: int = 0
    eval_max_new_tokens: int = 0  # 0: the same as max_new_tokens
    eval_batch_size: int = 128

    def __post_init__(self):
        super().__post_init__()
        require(self.eval_items >= 1, "eval_items", "must be >= 1")


@dataclass
class R1ZeroConfig(GRPOJobConfig):
    """`r1lab r1-zero`: the same settings, with the template fixed to the paper's.

    The defaults are the tiny world's run: 60 steps of 16 prompts x 8 samples, lr 1e-4,
    held-out evaluation every 10 steps.
    """

    steps: int = 60
    eval_every: int = 10

    def __post_init__(self):
        super().__post_init__()
        require(self.template == "r1-zero", "template", "is fixed to 'r1-zero' in this job (use `r1lab grpo` for others)")


def training_items(config: GRPOJobConfig):
    """(train items, held-out items, task or None) from the dataset file or the built-in task.

    A dataset without an `eval_dataset` gives its first 10 % to the held-out evaluation."""
    if config.dataset:
        items = read_jsonl_prompts(config.dataset)
        if config.eval_dataset:
            return items, read_jsonl_prompts(config.eval_dataset), None
        cut = max(1, len(items) // 10)
        if len(items) < 2:
            raise ValueError(f"{config.dataset}: one row cannot be split into training and held-out prompts; "
                             "add rows or give --eval-dataset")
        logger.info("%s: the first %d rows are held out for evaluation (give --eval-dataset to choose them)",
                    config.dataset, cut)
        return items[cut:], items[:cut], None
    task = get_task(config.task)
    return task.items(config.train_items, "train", config.seed), None, task


def default_rewards(config: GRPOConfig):
    names = list(config.rewards)
    if config.task == "countdown" and not config.dataset and "accuracy" in names:
        names[names.index("accuracy")] = "countdown"  # an expression is verified by evaluating it
    if config.task == "code" and not config.dataset and "accuracy" in names:
        names[names.index("accuracy")] = "code"  # a program is verified by running its hidden tests
    functions = reward_functions(names, config.reward_weights, config.reward_timeout)
    if config.template != "r1-zero":  # no <answer> tags asked for: read the last number, as the evaluation does
        functions = [replace(f, function=partial(f.function, extract="last_number"))
                     if f.name in ("accuracy", "countdown") else f for f in functions]
    return functions


def job_scorer(config: GRPOConfig):
    """The job's reward functions as one scorer (built again by each generation worker on Ray)."""
    return scorer(default_rewards(config))


def run_grpo_job(config: GRPOJobConfig, run_dir: Path, resume: bool = False, quiet: bool = False,
                stop_after: int | None = None, overwrite: bool = False, job: str = "grpo") -> dict:
    # imported here: the config classes above are read by the CLI's help, which must not pay for torch
    from r1lab.llm.grpo import train_grpo
    from r1lab.pipelines.evaluate import EvalSettings, evaluate
    from r1lab.runs import plot_run

    train, held_out, task = training_items(config)
    if held_out is None:
        held_out = task.items(config.eval_items, "test", config.seed)
    held_out = held_out[: config.eval_items]
    settings = EvalSettings(template=config.template, items=len(held_out), k=config.eval_k,
                            temperature=config.temperature,
                            max_new_tokens=config.eval_max_new_tokens or config.max_new_tokens,
                            batch_size=config.eval_batch_size, seed=config.seed)

    def evaluator(model, tokenizer) -> dict:
        return evaluate(model, tokenizer, held_out, settings, task)

    summary = train_grpo(config, run_dir, train, Recipe(job_scorer, config), evaluator=evaluator,
                         eval_every=config.eval_every, resume=resume, quiet=quiet, stop_after=stop_after,
                         overwrite=overwrite, job=job)
    if "stopped_at" in summary:
        return summary
    before, after = summary["evaluations"][0], summary["evaluations"][-1]
    summary["before"] = {k: before.get(k) for k in TABLE_KEYS}
    summary["after"] = {k: after.get(k) for k in TABLE_KEYS}
    summary["examples_after"] = after.get("examples", [])
    from r1lab.runs import write_json_atomic

    write_json_atomic(Path(run_dir) / "summary.json", summary)
    available = set()
    from r1lab.runs import read_metrics

    for record in read_metrics(run_dir):
        available.update(record)
    plot_run(run_dir, [k for k in CURVES if k in available], smooth=5)
    return summary
