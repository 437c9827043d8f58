"""The language-model jobs of the `r1lab` command: pretrain-tiny, generate, eval-llm, sft, grpo, r1-zero."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from r1lab.cli import Preset, Quiet, RunDir, Sets, app, clear_errors, console

Model = Annotated[str | None, typer.Option("--model", help="'tiny' (bundled), a local directory or a hub id.")]
Resume = Annotated[Path | None, typer.Option("--resume", help="Continue the run in this directory.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.")]


def _config(cls, preset, sets, resume, **named):
    """The job's config: from the run being resumed, or defaults + preset + named options + --set."""
    from r1lab.runs import build, load_config, read_config_file

    if resume is not None:
        return build(cls, read_config_file(resume), f"{resume}/config.yaml")
    return load_config(cls, preset, overrides=named, sets=sets)


def _run_dir(run_dir, resume, job):
    from r1lab.runs import default_run_dir

    return Path(resume) if resume is not None else Path(run_dir or default_run_dir(job))


@app.command("pretrain-tiny")
@clear_errors
def pretrain_tiny(run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, seed: Seed = None,
                  steps: Annotated[int | None, typer.Option(help="Optimiser steps.")] = None,
                  install: Annotated[bool, typer.Option(help="Copy the model into r1lab/assets/tiny.")] = False,
                  resume: Resume = None, quiet: Quiet = False):
    """Pretrain the tiny world's base model on its synthetic corpus (deterministic from --seed)."""
    from r1lab.llm.pretrain import pretrain
    from r1lab.llm.tiny import PretrainConfig
    from r1lab.pipelines.tiny_model_card import install_tiny_model

    config = _config(PretrainConfig, preset, sets, resume, seed=seed, steps=steps)
    directory = _run_dir(run_dir, resume, "pretrain-tiny")
    summary = pretrain(config, directory, resume=resume is not None, quiet=quiet)
    console.print(f"final loss {summary['final_loss']:.4f} after {summary['tokens_seen']:,} tokens "
                  f"in {summary['wall_seconds'] / 60:.1f} min; model in {summary['model_dir']}")
    if install:
        path = install_tiny_model(directory, quiet=quiet)
        console.print(f"installed the model and its card in {path}")


@app.command()
@clear_errors
def generate(prompt: Annotated[list[str], typer.Option("--prompt", help="A prompt (repeatable).")],
             model: Model = "tiny", num: Annotated[int, typer.Option("--num", help="Samples per prompt.")] = 1,
             max_new_tokens: int = 128, temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
             template: Annotated[str, typer.Option(help="plain, chat or r1-zero.")] = "plain",
             seed: int = 0, run_dir: RunDir = None):
    """Sample completions and print them with the tokens/s reached (generation time only)."""
    import time

    import torch

    from r1lab.llm.generation import SamplingSettings
    from r1lab.llm.generation import generate as sample
    from r1lab.llm.loading import load_model
    from r1lab.llm.prompts import apply_template
    from r1lab.runs import default_run_dir, write_json_atomic

    loaded = load_model(model)
    texts = [apply_template(template, p, loaded.tokenizer) for p in prompt for _ in range(num)]
    settings = SamplingSettings(max_new_tokens, temperature, top_p, top_k)
    generator = torch.Generator(device=loaded.device).manual_seed(seed)
    started = time.perf_counter()
    out = sample(loaded.policy, loaded.tokenizer, texts, settings, generator)
    seconds = time.perf_counter() - started
    tokens = int(out.lengths.sum())
    for i, text in enumerate(out.texts):
        console.rule(f"[bold]{prompt[i // num][:60]}[/] #{i % num + 1}")
        console.print(text, markup=False, highlight=False)
    console.print(f"\n{tokens} tokens in {seconds:.2f} s: [bold]{tokens / seconds:,.0f} tokens/s[/]")
    directory = Path(run_dir or default_run_dir("generate"))
    write_json_atomic(directory / "summary.json", {
        "model": model, "completions": [{"prompt": texts[i], "completion": t} for i, t in enumerate(out.texts)],
        "tokens": tokens, "generation_seconds": seconds, "tokens_per_second": tokens / seconds})


@app.command("eval-llm")
@clear_errors
def eval_llm(model: Model = "tiny", task: Annotated[str, typer.Option(help="A built-in task.")] = "arithmetic",
             template: Annotated[str, typer.Option(help="plain, chat or r1-zero.")] = "r1-zero",
             items: int = 200, k: Annotated[int, typer.Option("--k", help="Samples per question for pass@k.")] = 8,
             max_new_tokens: int = 160, seed: int = 0, run_dir: RunDir = None):
    """Greedy accuracy, pass@k, format rate, mean length and language mixing on a held-out split."""
    from r1lab.llm.loading import load_model
    from r1lab.pipelines.evaluate import EvalSettings, evaluate
    from r1lab.runs import default_run_dir, write_json_atomic
    from r1lab.tasks import get_task

    loaded = load_model(model)
    chosen = get_task(task)
    held_out = chosen.items(items, "test", seed)
    result = evaluate(loaded.policy, loaded.tokenizer, held_out,
                      EvalSettings(template=template, items=items, k=k, max_new_tokens=max_new_tokens, seed=seed), chosen)
    table = Table(title=f"{model} on held-out {task} ({items} items, template {template})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("accuracy", "answer_anywhere_accuracy", "pass_at_k", "format_rate", "sampled_format_rate",
                "mean_length", "mixing_rate", "sampled_mixing_rate"):
        if key in result:
            table.add_row(key if key != "pass_at_k" else f"pass@{k}", f"{result[key]:.3f}")
    console.print(table)
    directory = Path(run_dir or default_run_dir("eval-llm"))
    write_json_atomic(directory / "summary.json", {"model": model, "task": task, "template": template, **result})


@app.command()
@clear_errors
def sft(data: Annotated[str | None, typer.Option("--data", help="JSONL rows {prompt, completion}.")] = None,
        model: Model = None, run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, seed: Seed = None,
        lr: float | None = None, epochs: float | None = None,
        max_steps: Annotated[int | None, typer.Option("--max-steps")] = None,
        template: str | None = None, resume: Resume = None, quiet: Quiet = False):
    """Supervised fine-tuning on (prompt, completion) pairs, loss on completion tokens only."""
    from r1lab.llm.sft import SFTConfig, train_sft

    config = _config(SFTConfig, preset, sets, resume, data=data, model=model, seed=seed, lr=lr, epochs=epochs,
                     max_steps=max_steps, template=template)
    summary = train_sft(config, _run_dir(run_dir, resume, "sft"), resume=resume is not None, quiet=quiet)
    console.print(f"eval loss {summary['eval_loss_first']} -> {summary['eval_loss_last']}; "
                  f"model in {summary['model_dir']}")



def _grpo_job(config_cls, job, run_dir, preset, sets, resume, quiet, named) -> dict:
    from r1lab.pipelines.r1_zero import run_grpo_job

    config = _config(config_cls, preset, sets, resume, **named)
    directory = _run_dir(run_dir, resume, job)
    summary = run_grpo_job(config, directory, resume=resume is not None, quiet=quiet)
    _print_before_after(summary, directory)
    return summary


def _print_before_after(summary: dict, directory: Path) -> None:
    from r1lab.pipelines.r1_zero import TABLE_KEYS

    table = Table(title=f"held-out evaluation ({directory})")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key in TABLE_KEYS:
        before, after = summary["before"].get(key), summary["after"].get(key)
        if before is not None:
            table.add_row(key, f"{before:.3f}", f"{after:.3f}")
    console.print(table)
    console.print(f"reward {summary['reward_first']:.3f} -> {summary['reward_last']:.3f}; "
                  f"{summary['seconds_per_step_median']:.2f} s/step; {summary['wall_seconds'] / 60:.1f} min; "
                  f"curves in {directory / 'plots'}")


GroupSize = Annotated[int | None, typer.Option("--group-size", help="G: completions per prompt.")]
PromptsPerStep = Annotated[int | None, typer.Option("--prompts-per-step", help="Prompts per step.")]
MaxNew = Annotated[int | None, typer.Option("--max-new-tokens", help="Completion length limit.")]
Steps = Annotated[int | None, typer.Option("--steps", help="Training steps.")]
Beta = Annotated[float | None, typer.Option("--beta", help="KL weight (0: no reference model).")]
LR = Annotated[float | None, typer.Option("--lr", help="Learning rate.")]
LossType = Annotated[str | None, typer.Option("--loss-type", help="grpo, bnpo, dapo or dr_grpo.")]
Iterations = Annotated[int | None, typer.Option("--num-iterations", help="mu: passes per batch.")]
Task = Annotated[str | None, typer.Option("--task", help="A built-in task: arithmetic, countdown, ...")]
Dataset = Annotated[str | None, typer.Option("--dataset", help="JSONL rows {prompt, answer, ...}.")]


@app.command()
@clear_errors
def grpo(model: Model = None, task: Task = None, dataset: Dataset = None, group_size: GroupSize = None,
         prompts_per_step: PromptsPerStep = None, max_new_tokens: MaxNew = None, steps: Steps = None,
         beta: Beta = None, lr: LR = None, loss_type: LossType = None, num_iterations: Iterations = None,
         template: Annotated[str | None, typer.Option(help="plain, chat or r1-zero.")] = None,
         rewards: Annotated[str | None, typer.Option(help="Comma-separated reward names.")] = None,
         seed: Seed = None, run_dir: RunDir = None, preset: Preset = None, sets: Sets = None,
         resume: Resume = None, quiet: Quiet = False):
    """GRPO on any model, task or dataset; every setting is also reachable with --set key=value."""
    from r1lab.pipelines.r1_zero import GRPOJobConfig

    named = dict(model=model, task=task, dataset=dataset, group_size=group_size, prompts_per_step=prompts_per_step,
                 max_new_tokens=max_new_tokens, steps=steps, beta=beta, lr=lr, loss_type=loss_type,
                 num_iterations=num_iterations, template=template, seed=seed,
                 rewards=rewards.split(",") if rewards else None)
    _grpo_job(GRPOJobConfig, "grpo", run_dir, preset, sets, resume, quiet, named)


@app.command("r1-zero")
@clear_errors
def r1_zero(model: Model = None, task: Task = None, dataset: Dataset = None, group_size: GroupSize = None,
            prompts_per_step: PromptsPerStep = None, max_new_tokens: MaxNew = None, steps: Steps = None,
            beta: Beta = None, lr: LR = None, loss_type: LossType = None, num_iterations: Iterations = None,
            seed: Seed = None, run_dir: RunDir = None, preset: Preset = None, sets: Sets = None,
            resume: Resume = None, quiet: Quiet = False):
    """DeepSeek-R1-Zero: GRPO with accuracy and format rewards from the base model, no SFT."""
    from r1lab.pipelines.r1_zero import R1ZeroConfig

    named = dict(model=model, task=task, dataset=dataset, group_size=group_size, prompts_per_step=prompts_per_step,
                 max_new_tokens=max_new_tokens, steps=steps, beta=beta, lr=lr, loss_type=loss_type,
                 num_iterations=num_iterations, seed=seed)
    _grpo_job(R1ZeroConfig, "r1-zero", run_dir, preset, sets, resume, quiet, named)
