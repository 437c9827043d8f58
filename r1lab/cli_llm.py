"""The language-model jobs of the `r1lab` command: pretrain-tiny, generate, eval-llm, sft, grpo, r1-zero."""

from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import typer
from rich.table import Table

from r1lab.cli import (
    NoReport,
    Overwrite,
    Preset,
    PrintConfig,
    Quiet,
    RunDir,
    Sets,
    app,
    clear_errors,
    console,
    default,
    print_config,
    write_run_report,
)
from r1lab.llm.sft_config import SFTConfig
from r1lab.pipelines.r1_zero import GRPOJobConfig, R1ZeroConfig
from r1lab.tasks import TASKS

TEMPLATES = "plain, chat or r1-zero"
TASK_NAMES = ", ".join(TASKS)

Model = Annotated[str | None, typer.Option("--model", help="'tiny' (bundled), a local directory or a hub id.",
                                           show_default="tiny")]
Resume = Annotated[Path | None, typer.Option("--resume", help="Continue the run in this directory.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.", show_default="0")]


def _config(cls, preset, sets, resume, **named):
    """The job's config: from the run being resumed, or defaults + preset + named options + --set."""
    from r1lab.runs import ConfigError, build, load_config, read_config_file

    if resume is not None:
        if preset is not None or sets or any(v is not None for v in named.values()):
            raise ConfigError("--resume continues a run with the config it started with; drop the other options")
        return build(cls, read_config_file(resume), f"{resume}/config.yaml")
    return load_config(cls, preset, overrides=named, sets=sets)


def _run_dir(run_dir, resume, job):
    from r1lab.runs import default_run_dir

    return Path(resume) if resume is not None else Path(run_dir or default_run_dir(job))


def _at_least_one(value: int, option: str) -> None:
    from r1lab.runs import ConfigError

    if value < 1:
        raise ConfigError(f"{option} must be >= 1, got {value}")


@app.command("pretrain-tiny")
@clear_errors
def pretrain_tiny(run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, seed: Seed = None,
                  steps: Annotated[int | None, typer.Option(help="Optimiser steps.", show_default="the recipe's")] = None,
                  install: Annotated[bool, typer.Option(help="Copy the model into r1lab/assets/tiny.")] = False,
                  install_as: Annotated[str | None, typer.Option(
                      help="Install as this bundled name instead: tiny or tiny-student.")] = None,
                  resume: Resume = None, overwrite: Overwrite = False, quiet: Quiet = False,
                  print_only: PrintConfig = False, no_report: NoReport = False):
    """Pretrain the tiny world's base model on its synthetic corpus (deterministic from --seed)."""
    from r1lab.llm.loading import BUNDLED, tiny_model_path
    from r1lab.llm.pretrain import pretrain
    from r1lab.llm.tiny import PretrainConfig
    from r1lab.pipelines.tiny_model_card import install_tiny_model
    from r1lab.runs import ConfigError

    if install_as is not None and install_as not in BUNDLED:
        raise ConfigError(f"--install-as must be one of {', '.join(BUNDLED)}, got {install_as!r}")
    config = _config(PretrainConfig, preset, sets, resume, seed=seed, steps=steps)
    if print_only:
        return print_config(config)
    directory = _run_dir(run_dir, resume, "pretrain-tiny")
    summary = pretrain(config, directory, resume=resume is not None, overwrite=overwrite, quiet=quiet)
    console.print(f"final loss {summary['final_loss']:.4f} after {summary['tokens_seen']:,} tokens "
                  f"in {summary['wall_seconds'] / 60:.1f} min; model in {summary['model_dir']}", highlight=False)
    if install or install_as:
        path = install_tiny_model(directory, destination=tiny_model_path(install_as or "tiny"), quiet=quiet)
        console.print(f"installed the model and its card in {path}")
    write_run_report(directory, no_report)


@app.command()
@clear_errors
def generate(prompt: Annotated[list[str], typer.Option("--prompt", help="A prompt (repeatable).")],
             model: Annotated[str, typer.Option("--model", help="'tiny' (bundled), a local directory or a hub id.")] = "tiny",
             num: Annotated[int, typer.Option("--num", help="Samples per prompt.")] = 1,
             max_new_tokens: Annotated[int, typer.Option(help="Completion length limit.")] = 128,
             temperature: Annotated[float, typer.Option(help="0 is greedy.")] = 1.0,
             top_p: Annotated[float, typer.Option(help="Nucleus sampling; 1 is off.")] = 1.0,
             top_k: Annotated[int, typer.Option(help="Top-k sampling; 0 is off.")] = 0,
             template: Annotated[str, typer.Option(help=f"{TEMPLATES}.")] = "plain",
             seed: Annotated[int, typer.Option(help="Random seed.")] = 0, run_dir: RunDir = None):
    """Sample completions and print them with the tokens/s reached (generation time only)."""
    import time

    import torch

    from r1lab.llm.generation import SamplingSettings
    from r1lab.llm.generation import generate as sample
    from r1lab.llm.loading import load_model
    from r1lab.llm.prompts import apply_template
    from r1lab.runs import default_run_dir, write_json_atomic

    _at_least_one(num, "--num")
    settings = SamplingSettings(max_new_tokens, temperature, top_p, top_k)
    loaded = load_model(model)
    texts = [apply_template(template, p, loaded.tokenizer) for p in prompt for _ in range(num)]
    generator = torch.Generator(device=loaded.device).manual_seed(seed)
    started = time.perf_counter()
    out = sample(loaded.policy, loaded.tokenizer, texts, settings, generator)
    seconds = time.perf_counter() - started
    tokens = int(out.lengths.sum())
    for i, text in enumerate(out.texts):
        console.rule(f"{prompt[i // num][:60]} #{i % num + 1}", style="bold")
        console.print(text, markup=False, highlight=False)
    console.print(f"\n{tokens} tokens in {seconds:.2f} s: [bold]{tokens / seconds:,.0f} tokens/s[/]")
    directory = Path(run_dir or default_run_dir("generate"))
    write_json_atomic(directory / "summary.json", {
        "model": model, "completions": [{"prompt": texts[i], "completion": t} for i, t in enumerate(out.texts)],
        "tokens": tokens, "generation_seconds": seconds, "tokens_per_second": tokens / seconds})


@app.command("eval-llm")
@clear_errors
def eval_llm(model: Annotated[str, typer.Option("--model", help="'tiny', a local directory or a hub id.")] = "tiny",
             task: Annotated[str, typer.Option(help=f"A built-in task: {TASK_NAMES}.")] = "arithmetic",
             template: Annotated[str | None, typer.Option(help=f"{TEMPLATES}.",
                                                          show_default="r1-zero; chat for requests")] = None,
             items: Annotated[int, typer.Option(help="Held-out questions to evaluate.")] = 200,
             k: Annotated[int, typer.Option("--k", help="Samples per question for pass@k (0: none).")] = 8,
             max_new_tokens: Annotated[int, typer.Option(help="Completion length limit.")] = 160,
             seed: Annotated[int, typer.Option(help="Random seed of the sampled completions.")] = 0,
             run_dir: RunDir = None):
    """Held-out evaluation: greedy accuracy, pass@k, format, length, language mixing and self-checks
    (reasoning tasks); the share of helpful replies or of refusals, by the task's own check (chat, harmful)."""
    from r1lab.llm.loading import load_model
    from r1lab.pipelines.evaluate import EvalSettings, evaluate
    from r1lab.runs import ConfigError, default_run_dir, write_json_atomic
    from r1lab.tasks import get_task

    _at_least_one(items, "--items")
    if k < 0:
        raise ConfigError(f"--k must be >= 0, got {k}")
    chosen = get_task(task)
    requests = getattr(chosen, "answer_format", "number") == "text"  # chat, harmful, general: whole replies
    template = template or ("chat" if requests else "r1-zero")
    loaded = load_model(model)
    held_out = chosen.items(items, "test", seed)
    result = evaluate(loaded.policy, loaded.tokenizer, held_out,
                      EvalSettings(template=template, items=items, k=k, max_new_tokens=max_new_tokens, seed=seed),
                      chosen)
    if requests:  # accuracy is the task's own check of a reply: helpful for a request, a refusal for a harmful one
        result = {("helpful_rate" if task == "chat" else "harmless_rate" if task == "harmful" else "rule_check_rate")
                  if key == "accuracy" else key: value for key, value in result.items()
                  if key not in ("answer_anywhere_accuracy", "format_rate", "sampled_format_rate")}
    table = Table(title=f"{model} on held-out {task} ({items} items, template {template})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if isinstance(value, float):
            table.add_row(key if key != "pass_at_k" else f"pass@{k}", f"{value:.3f}")
    console.print(table)
    directory = Path(run_dir or default_run_dir("eval-llm"))
    write_json_atomic(directory / "summary.json", {"model": model, "task": task, "template": template, **result})


@app.command()
@clear_errors
def sft(data: Annotated[str | None, typer.Option("--data", help="JSONL rows {prompt, completion} or {messages: [...]} "
                                                             "conversations (TRL's formats).")] = None,
        model: Model = None, run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, seed: Seed = None,
        lr: Annotated[float | None, typer.Option(help="Peak learning rate.", show_default=default(SFTConfig, "lr"))] = None,
        epochs: Annotated[float | None, typer.Option(help="Passes over the data.",
                                                     show_default=default(SFTConfig, "epochs"))] = None,
        max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimiser steps; 0: as many as the epochs take.",
                                                      show_default=default(SFTConfig, "max_steps"))] = None,
        template: Annotated[str | None, typer.Option(help=f"{TEMPLATES}, applied to plain prompts.",
                                                     show_default=default(SFTConfig, "template"))] = None,
        resume: Resume = None, overwrite: Overwrite = False, quiet: Quiet = False, print_only: PrintConfig = False,
        no_report: NoReport = False):
    """Supervised fine-tuning on (prompt, completion) pairs, loss on completion tokens only."""
    from r1lab.llm.sft import train_sft

    config = _config(SFTConfig, preset, sets, resume, data=data, model=model, seed=seed, lr=lr, epochs=epochs,
                     max_steps=max_steps, template=template)
    if print_only:
        return print_config(config)
    directory = _run_dir(run_dir, resume, "sft")
    summary = train_sft(config, directory, resume=resume is not None, quiet=quiet, overwrite=overwrite)
    first, last = summary["eval_loss_first"], summary["eval_loss_last"]
    losses = f"eval loss {first:.4f} -> {last:.4f}" if first is not None else f"train loss {summary['loss_last']:.4f}"
    console.print(f"{losses}; {summary['steps']} steps in {summary['wall_seconds']:.1f} s; "
                  f"model in {summary['model_dir']}", highlight=False, soft_wrap=True)
    write_run_report(directory, no_report)


def _grpo_job(config_cls, job, run_dir, preset, sets, resume, quiet, overwrite, print_only, named,
              no_report=False) -> dict | None:
    from r1lab.pipelines.r1_zero import run_grpo_job

    config = _config(config_cls, preset, sets, resume, **named)
    if print_only:
        return print_config(config)
    if config.dataset and not quiet:
        if named.get("task") is not None:
            console.print(f"--dataset {config.dataset} replaces --task {config.task}", highlight=False)
        if not config.eval_dataset:
            console.print(f"held-out evaluation: the first 10 % of {config.dataset} (give --eval-dataset to choose it)",
                          highlight=False, soft_wrap=True)
    directory = _run_dir(run_dir, resume, job)
    summary = run_grpo_job(config, directory, resume=resume is not None, quiet=quiet, overwrite=overwrite, job=job)
    _print_before_after(summary, directory)
    write_run_report(directory, no_report)
    return summary


def _print_before_after(summary: dict, directory: Path) -> None:
    from r1lab.pipelines.r1_zero import TABLE_KEYS

    table = Table(title=f"held-out evaluation ({directory})")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key in TABLE_KEYS:
        before, after = summary["before"].get(key), summary["after"].get(key)
        if before is not None and after is not None:
            table.add_row(key, f"{before:.3f}", f"{after:.3f}")
    console.print(table)
    console.print(f"reward {summary['reward_first']:.3f} -> {summary['reward_last']:.3f}; "
                  f"{summary['seconds_per_step_median']:.2f} s/step; {summary['wall_seconds'] / 60:.1f} min; "
                  f"curves in {directory / 'plots'}", highlight=False, soft_wrap=True)


def _rewards(names: str | None, specs: list[str] | None) -> tuple[list[str] | None, list[float] | None]:
    """`--rewards a,b` (built-in names) and `--reward SPEC` (repeatable: a built-in name or a
    `module:function` of yours, with an optional `=WEIGHT`) as the config's rewards and weights."""
    from r1lab.runs import ConfigError

    rewards = names.split(",") if names else []
    weights = [1.0] * len(rewards)
    for spec in specs or []:
        name, _, weight = spec.partition("=")
        try:
            weights.append(float(weight) if weight else 1.0)
        except ValueError:
            raise ConfigError(f"--reward {spec!r}: the weight after '=' must be a number") from None
        rewards.append(name.strip())
    if not rewards:
        return None, None
    return rewards, (weights if any(w != 1.0 for w in weights) else None)


def _grpo_options(cls) -> SimpleNamespace:
    """The options `grpo` and `r1-zero` share, each with its help and its default in `cls`."""
    def option(flag: str, text: str, key: str | None = None, kind=str, shown: str | bool = False):
        return Annotated[kind | None, typer.Option(flag, help=f"{text}.", show_default=default(cls, key) if key else shown)]

    return SimpleNamespace(
        task=option("--task", f"A built-in task: {TASK_NAMES}", "task"),
        dataset=option("--dataset", "JSONL rows {prompt, answer, ...}; replaces --task"),
        eval_dataset=option("--eval-dataset", "JSONL held-out prompts", shown="the first 10 % of --dataset"),
        group_size=option("--group-size", "G: completions per prompt", "group_size", int),
        prompts_per_step=option("--prompts-per-step", "Prompts per step", "prompts_per_step", int),
        max_new_tokens=option("--max-new-tokens", "Completion length limit", "max_new_tokens", int),
        steps=option("--steps", "Training steps", "steps", int),
        beta=option("--beta", "KL weight; 0: no reference model", "beta", float),
        lr=option("--lr", "Learning rate", "lr", float),
        loss_type=option("--loss-type", "grpo, bnpo, dapo or dr_grpo", "loss_type"),
        num_iterations=option("--num-iterations", "mu: passes per batch", "num_iterations", int),
        template=option("--template", TEMPLATES, "template"),
        rewards=option("--rewards", "Comma-separated built-in reward names", "rewards"),
        reward=Annotated[list[str] | None, typer.Option("--reward", help="A reward function: a built-in name or "
                                                                         "module:function (TRL's signature), with an "
                                                                         "optional =WEIGHT; repeatable.")],
    )


G = _grpo_options(GRPOJobConfig)
Z = _grpo_options(R1ZeroConfig)


@app.command()
@clear_errors
def grpo(model: Model = None, task: G.task = None, dataset: G.dataset = None,
         eval_dataset: G.eval_dataset = None, group_size: G.group_size = None,
         prompts_per_step: G.prompts_per_step = None, max_new_tokens: G.max_new_tokens = None,
         steps: G.steps = None, beta: G.beta = None, lr: G.lr = None, loss_type: G.loss_type = None,
         num_iterations: G.num_iterations = None, template: G.template = None, rewards: G.rewards = None,
         reward: G.reward = None, seed: Seed = None, run_dir: RunDir = None, preset: Preset = None,
         sets: Sets = None, resume: Resume = None, overwrite: Overwrite = False, quiet: Quiet = False,
         print_only: PrintConfig = False, no_report: NoReport = False):
    """GRPO on any model, task or dataset; every setting is also reachable with --set key=value."""
    reward_names, reward_weights = _rewards(rewards, reward)
    named = dict(model=model, task=task, dataset=dataset, eval_dataset=eval_dataset, group_size=group_size,
                 prompts_per_step=prompts_per_step, max_new_tokens=max_new_tokens, steps=steps, beta=beta, lr=lr,
                 loss_type=loss_type, num_iterations=num_iterations, template=template, seed=seed,
                 rewards=reward_names, reward_weights=reward_weights)
    _grpo_job(GRPOJobConfig, "grpo", run_dir, preset, sets, resume, quiet, overwrite, print_only, named, no_report)


@app.command("r1-zero")
@clear_errors
def r1_zero(model: Model = None, task: Z.task = None, dataset: Z.dataset = None,
            eval_dataset: Z.eval_dataset = None, group_size: Z.group_size = None,
            prompts_per_step: Z.prompts_per_step = None, max_new_tokens: Z.max_new_tokens = None,
            steps: Z.steps = None, beta: Z.beta = None, lr: Z.lr = None, loss_type: Z.loss_type = None,
            num_iterations: Z.num_iterations = None, reward: Z.reward = None, seed: Seed = None,
            run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, resume: Resume = None,
            overwrite: Overwrite = False, quiet: Quiet = False, print_only: PrintConfig = False,
            no_report: NoReport = False):
    """DeepSeek-R1-Zero: GRPO with accuracy and format rewards from the base model, no SFT.

    --reward adds a reward function to the two."""
    reward_names, reward_weights = _rewards("accuracy,format" if reward else None, reward)
    named = dict(model=model, task=task, dataset=dataset, eval_dataset=eval_dataset, group_size=group_size,
                 prompts_per_step=prompts_per_step, max_new_tokens=max_new_tokens, steps=steps, beta=beta, lr=lr,
                 loss_type=loss_type, num_iterations=num_iterations, seed=seed, rewards=reward_names,
                 reward_weights=reward_weights)
    _grpo_job(R1ZeroConfig, "r1-zero", run_dir, preset, sets, resume, quiet, overwrite, print_only, named, no_report)
