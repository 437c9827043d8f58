"""The `r1lab` command: one subcommand per job.

Every job command shares one contract: `--run-dir DIR` chooses where the run lives (default
`runs/JOB-TIMESTAMP-XXXX`), `--preset NAME|FILE` loads a YAML preset, `--set key=value` overrides
any config key, `--print-config` shows the resolved config without running, and the job ends by
writing `DIR/summary.json`. A training job stopped by Ctrl-C or SIGTERM finishes its step, writes
a checkpoint and says how to `--resume` it. Heavy imports happen inside the commands so that
`r1lab --help` stays instant.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

app = typer.Typer(
    help="r1lab: the road from Q-learning to DeepSeek R1, as training code you can run and read.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Where the run lives (default runs/JOB-TIME-XXXX).")]
Preset = Annotated[str | None, typer.Option("--preset", "-p", help="A shipped preset name or a YAML file.")]
Sets = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override any config key: key=value.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables.")]
PrintConfig = Annotated[bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Start again in a run dir that holds a run, clearing it.")]
NoReport = Annotated[bool, typer.Option("--no-report", help="Do not write RUN_DIR/report.html at the end.")]


def write_run_report(directory: Path, skip: bool = False) -> None:
    """Every job ends with its HTML report; a report that cannot be built warns, never fails the job."""
    if skip:
        return
    from r1lab.report import write_report

    try:
        path = write_report(directory)
    except Exception as error:  # the run itself succeeded; its page is a convenience
        console.print(Text(f"warning: no report for {directory}: {error}", style="yellow"), soft_wrap=True)
        return
    console.print(f"report: {path}", highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from r1lab import __version__

        console.print(f"r1lab {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                              help="Print the version and exit.")] = None):
    """r1lab: the road from Q-learning to DeepSeek R1, as training code you can run and read."""


def default(config_class, key: str) -> str:
    """An option's default as its help shows it, read from the job's config class (the options
    default to None so that presets apply; the help still says what an unset option means)."""
    import dataclasses

    for f in dataclasses.fields(config_class):
        if f.name == key:
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            return ",".join(map(str, value)) if isinstance(value, list) else str(value)
    raise KeyError(key)


def print_config(config) -> None:
    """The resolved config as the YAML a `--preset` file takes."""
    import yaml

    from r1lab.runs import to_dict

    console.print(yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True).rstrip(), markup=False,
                  highlight=False, soft_wrap=True)


def resume_command(job: str, run_dir: Path) -> str:
    from r1lab.policy_gradient.config import CONFIGS

    command = f"train {job}" if job in CONFIGS else job
    return f"r1lab {command} --resume {run_dir}"


def print_error(message: str) -> None:
    """One red `error:` and the message as plain text: no markup (square brackets in a file name
    or a pip command stay as written) and no wrapping (one line a script can grep)."""
    console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True, highlight=False)


def clear_errors(command):
    """Bad input ends the command with one red line naming the problem, and exit status 2.

    A training job inside runs with SIGINT and SIGTERM turned into a stop request: it finishes its
    step, writes a checkpoint, and this prints how to resume and exits with 128 + the signal."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from r1lab.runs import ConfigError, RunInterrupted, stop_on_signals

        try:
            with stop_on_signals():
                return command(*args, **kwargs)
        except RunInterrupted as stop:
            print_error(f"stopped by {stop}; continue with: {resume_command(stop.job, stop.run_dir)}")
            raise typer.Exit(stop.exit_code) from None
        except (ConfigError, FileNotFoundError, KeyError, ValueError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print_error(str(message))
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@clear_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding metrics.jsonl.")],
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="Only these metrics.")] = None,
    smooth: Annotated[int, typer.Option(help="Overlay a moving average over this many points.")] = 1,
):
    """Draw a run's metrics to PNG curves in RUN_DIR/plots/."""
    from r1lab.runs import plot_run

    paths = plot_run(run_dir, metric, smooth=smooth)
    console.print(f"wrote {len(paths)} plots to {run_dir / 'plots'}")


@app.command()
@clear_errors
def maze(
    layout: Annotated[Path | None, typer.Option("--layout", help="A maze picture file (S, E, #, .) [default: the seed's 3x3 maze].")] = None,
    size: Annotated[int | None, typer.Option("--size", help="A random SIZE x SIZE maze instead.")] = None,
    maze_seed: Annotated[int | None, typer.Option("--maze-seed", help="Which random maze [default: 0].")] = None,
    episodes: Annotated[int | None, typer.Option("--episodes", help="Training episodes [default: max(200, 2 x open cells)].")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="Starting exploration rate [default: 1.0].")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Learning rate, in (0, 1] [default: 0.5].")] = None,
    gamma: Annotated[float | None, typer.Option("--gamma", help="Discount, in [0, 1] [default: 0.9].")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed of the learner [default: 0].")] = None,
    run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, quiet: Quiet = False,
    print_only: PrintConfig = False, no_report: NoReport = False,
):
    """Q-learning on the seed's maze (or --layout / --size): the Q table, the greedy path, and whether it is optimal."""
    from r1lab.runs import default_run_dir, load_config
    from r1lab.tabular import QLearningConfig, maze_report, train_maze

    named = dict(layout=str(layout) if layout is not None else None, size=size, maze_seed=maze_seed,
                 episodes=episodes, alpha=alpha, gamma=gamma, seed=seed,
                 epsilon={"start": epsilon} if epsilon is not None else None)
    config = load_config(QLearningConfig, preset, overrides=named, sets=sets)
    if print_only:
        return print_config(config)
    directory = Path(run_dir or default_run_dir("maze"))
    summary = train_maze(config, directory, quiet=quiet)
    for part in maze_report(directory) if not quiet else []:
        console.print(part)
    console.print(f"{summary['episodes']} episodes, {summary['updates']:,} updates in {summary['train_seconds']:.3f} s "
                  f"({summary['updates_per_second']:,.0f} updates/s); run in {directory}", highlight=False, soft_wrap=True)
    write_run_report(directory, no_report)


# the jobs of the later stages register themselves on `app`
from r1lab import cli_llm, cli_r1, cli_report, cli_rl, cli_rlhf  # noqa: E402, F401


def main() -> None:
    app(prog_name="r1lab")
