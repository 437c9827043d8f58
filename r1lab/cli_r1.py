"""`r1lab r1`: DeepSeek-R1's stages as one command."""

from pathlib import Path
from typing import Annotated

import typer

from r1lab.cli import (
    NoReport,
    Preset,
    PrintConfig,
    Quiet,
    RunDir,
    Sets,
    app,
    clear_errors,
    console,
    print_config,
    write_run_report,
)


@app.command()
@clear_errors
def r1(model: Annotated[str | None, typer.Option("--model", help="The base model: 'tiny', a directory or a hub id.",
                                                 show_default="tiny")] = None,
       stages: Annotated[str | None, typer.Option("--stages", help="Run part of the road: '2-4' by number (1 cold "
                                                  "start ... 5 distill) or names, comma-separated.",
                                                  show_default="all")] = None,
       from_stage: Annotated[int | None, typer.Option("--from-stage", help="Run stages N to 5.")] = None,
       inputs: Annotated[Path | None, typer.Option("--inputs", help="Another r1 run whose stage outputs the chosen "
                                                   "stages may read.")] = None,
       seed: Annotated[int | None, typer.Option("--seed", help="Random seed.", show_default="0")] = None,
       run_dir: RunDir = None, preset: Preset = None, sets: Sets = None,
       resume: Annotated[Path | None, typer.Option("--resume", help="Continue this run inside the stage it was in.")] = None,
       quiet: Quiet = False, print_only: PrintConfig = False, no_report: NoReport = False):
    """DeepSeek-R1: R1-Zero, reward models, cold start, reasoning RL, rejection sampling + SFT, RL for
    all scenarios, distillation; each stage in RUN_DIR/stages/NAME; one table at the end.

    Every stage's settings: --set STAGE.key=value (e.g. --set reasoning_rl.steps=60)."""
    from r1lab.pipelines.r1 import R1Config, parse_stages, run_r1
    from r1lab.pipelines.r1.pipeline import resumed_config
    from r1lab.runs import ConfigError, default_run_dir, load_config

    if stages and from_stage:
        raise ConfigError("give --stages or --from-stage, not both")
    chosen = parse_stages(f"{from_stage}-5" if from_stage else stages)
    if resume is not None:
        if preset or sets or model or seed is not None:
            raise ConfigError("--resume continues a run with the config it started with; drop the other options")
        config, directory = resumed_config(resume), Path(resume)
    else:
        config = load_config(R1Config, preset, overrides={"model": model, "seed": seed}, sets=sets)
        directory = Path(run_dir or default_run_dir("r1"))
    if print_only:
        return print_config(config)
    summary = run_r1(config, directory, stages=chosen, inputs=inputs, resume=resume is not None, quiet=quiet,
                     console=console)
    console.print(f"{len(summary['stages'])} stages in {summary['wall_seconds'] / 60:.1f} min; run in {directory}",
                  highlight=False, soft_wrap=True)
    write_run_report(directory, no_report)
