"""The RLHF jobs of the `r1lab` command: reward-model and rlhf."""

from pathlib import Path
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
from r1lab.cli_llm import Model, Resume, Seed, _config, _run_dir
from r1lab.llm.rlhf_config import RewardModelConfig
from r1lab.pipelines.rlhf import TABLE_KEYS, RLHFJobConfig

R = RewardModelConfig
J = RLHFJobConfig


def _option(cls, flag: str, text: str, key: str, kind=str):
    return Annotated[kind | None, typer.Option(flag, help=f"{text}.", show_default=default(cls, key))]


@app.command("reward-model")
@clear_errors
def reward_model(
    data: _option(R, "--data", "'helpful' or 'harmless' (the tiny world's pairs), or a JSONL of {prompt, chosen, "
                  "rejected[, margin]}", "data") = None,
    eval_data: Annotated[str | None, typer.Option("--eval-data", help="A JSONL of held-out pairs.",
                                                  show_default="the built-in test split, or 5 % of --data")] = None,
    model: Model = None,
    steps: _option(R, "--steps", "Optimiser steps; 0: as many as --epochs take", "steps", int) = None,
    epochs: _option(R, "--epochs", "Passes over the pairs", "epochs", float) = None,
    batch_size: _option(R, "--batch-size", "Pairs per micro-batch", "batch_size", int) = None,
    lr: _option(R, "--lr", "Peak learning rate", "lr", float) = None,
    center_rewards: _option(R, "--center-rewards", "Reward centering coefficient (0.01 is usual)",
                            "center_rewards_coef", float) = None,
    template: _option(R, "--template", "How prompts are rendered: chat or plain", "template") = None,
    seed: Seed = None, run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, resume: Resume = None,
    overwrite: Overwrite = False, quiet: Quiet = False, print_only: PrintConfig = False, no_report: NoReport = False,
):
    """Train a reward model (a causal LM's trunk with a scalar head) on preference pairs, Bradley-Terry loss."""
    from r1lab.llm.reward_model_training import train_reward_model

    config = _config(RewardModelConfig, preset, sets, resume, data=data, eval_data=eval_data, model=model, steps=steps,
                     epochs=epochs, batch_size=batch_size, lr=lr, center_rewards_coef=center_rewards,
                     template=template, seed=seed)
    if print_only:
        return print_config(config)
    directory = _run_dir(run_dir, resume, "reward-model")
    summary = train_reward_model(config, directory, resume=resume is not None, quiet=quiet, overwrite=overwrite)
    first = summary["eval_accuracy_first"]
    accuracy = (f"held-out pairwise accuracy {first:.3f} -> {summary['eval_accuracy']:.3f}, margin "
                f"{summary['eval_margin']:.2f}; " if first is not None else "")
    console.print(f"{accuracy}score mean {summary['reward_mean']:.3f}, std {summary['reward_std']:.3f}; "
                  f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s; model in {summary['model_dir']}",
                  highlight=False, soft_wrap=True)
    write_run_report(directory, no_report)


@app.command()
@clear_errors
def rlhf(
    model: Model = None,
    reward_model: Annotated[str | None, typer.Option("--reward-model", help="A reward model directory (from "
                                                     "`r1lab reward-model`) scoring every prompt.",
                                                     show_default="train a helpful and a harmless one")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Prompts: a built-in task (general, chat, harmful) or "
                                             "a JSONL of {prompt, ...}.", show_default=default(J, "task"))] = None,
    steps: _option(J, "--steps", "PPO steps", "steps", int) = None,
    prompts_per_step: _option(J, "--prompts-per-step", "Prompts per step", "prompts_per_step", int) = None,
    max_new_tokens: _option(J, "--max-new-tokens", "Completion length limit", "max_new_tokens", int) = None,
    ppo_epochs: _option(J, "--ppo-epochs", "Passes over each batch", "ppo_epochs", int) = None,
    beta: _option(J, "--beta", "KL coefficient in the per-token reward", "beta", float) = None,
    lr: _option(J, "--lr", "Learning rate", "lr", float) = None,
    seed: Seed = None, run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, resume: Resume = None,
    overwrite: Overwrite = False, quiet: Quiet = False, print_only: PrintConfig = False, no_report: NoReport = False,
):
    """RLHF with PPO: actor, critic, reward model(s) and reference; trains the reward models it needs.

    Every setting is also reachable with --set key=value (e.g. --set shared_critic=true)."""
    from r1lab.llm.reward_model import check_reward_model
    from r1lab.pipelines.rlhf import run_rlhf_job

    is_file = data is not None and (data.endswith(".jsonl") or Path(data).is_file())
    config = _config(RLHFJobConfig, preset, sets, resume, model=model, reward_model=reward_model,
                     dataset=data if is_file else None, task=None if is_file else data, steps=steps,
                     prompts_per_step=prompts_per_step, max_new_tokens=max_new_tokens, ppo_epochs=ppo_epochs,
                     beta=beta, lr=lr, seed=seed)
    if print_only:
        return print_config(config)
    for path in (config.reward_model, config.safety_reward_model):
        if path:
            check_reward_model(path)
    directory = _run_dir(run_dir, resume, "rlhf")
    summary = run_rlhf_job(config, directory, resume=resume is not None, quiet=quiet, overwrite=overwrite)
    table = Table(title=f"held-out evaluation ({directory})")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key in TABLE_KEYS:
        before, after = summary["before"].get(key), summary["after"].get(key)
        if before is not None and after is not None:
            table.add_row(key, f"{before:.3f}", f"{after:.3f}")
    console.print(table)
    models = "; ".join(f"{name} RM accuracy {s['eval_accuracy']:.3f}" for name, s in summary["reward_models"].items())
    console.print(f"{models + '; ' if models else ''}RM score {summary['rm_score_first']:.3f} -> "
                  f"{summary['rm_score_last']:.3f}; KL {summary['kl']:.2f}; {summary['seconds_per_step_median']:.2f} "
                  f"s/step; {summary['wall_seconds_total'] / 60:.1f} min; curves in {directory / 'plots'}",
                  highlight=False, soft_wrap=True)
    write_run_report(directory, no_report)
