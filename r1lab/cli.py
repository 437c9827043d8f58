"""The `r1lab` command: one subcommand per job.

Every job command shares one contract: `--run-dir DIR` chooses where the run lives (default
`runs/JOB-TIMESTAMP`), `--preset NAME|FILE` loads a YAML preset, `--set key=value` overrides any
config key, and the job ends by writing `DIR/summary.json`. Heavy imports happen inside the
commands so that `r1lab --help` stays instant.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="r1lab: the road from Q-learning to DeepSeek R1, as training code you can run and read.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Where the run lives (default runs/JOB-TIME).")]
Preset = Annotated[str | None, typer.Option("--preset", "-p", help="A shipped preset name or a YAML file.")]
Sets = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override any config key: key=value.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables.")]


def print_error(message: str) -> None:
    """One red `error:` and the message as plain text: no markup (square brackets in a file name
    or a pip command stay as written) and no wrapping (one line a script can grep)."""
    from rich.text import Text

    console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True, highlight=False)


def clear_errors(command):
    """Bad input ends the command with one red line naming the problem, and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from r1lab.runs import ConfigError

        try:
            return command(*args, **kwargs)
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
    layout: Annotated[Path | None, typer.Option("--layout", help="A maze picture file (S, E, #, .).")] = None,
    size: Annotated[int | None, typer.Option("--size", help="A random SIZE x SIZE maze instead.")] = None,
    maze_seed: Annotated[int | None, typer.Option("--maze-seed", help="Which random maze.")] = None,
    episodes: Annotated[int | None, typer.Option("--episodes", help="Training episodes.")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="Starting exploration rate.")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Learning rate, in (0, 1].")] = None,
    gamma: Annotated[float | None, typer.Option("--gamma", help="Discount, in [0, 1].")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed of the learner.")] = None,
    run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, quiet: Quiet = False,
):
    """Q-learning on the seed's maze (or --layout / --size): the Q table, the greedy path, and whether it is optimal."""
    from r1lab.runs import default_run_dir, load_config
    from r1lab.tabular import QLearningConfig, maze_report, train_maze

    named = dict(layout=str(layout) if layout is not None else None, size=size, maze_seed=maze_seed,
                 episodes=episodes, alpha=alpha, gamma=gamma, seed=seed,
                 epsilon={"start": epsilon} if epsilon is not None else None)
    config = load_config(QLearningConfig, preset, overrides=named, sets=sets)
    directory = Path(run_dir or default_run_dir("maze"))
    summary = train_maze(config, directory, quiet=quiet)
    for part in maze_report(directory) if not quiet else []:
        console.print(part)
    console.print(f"{summary['episodes']} episodes, {summary['updates']:,} updates in {summary['train_seconds']:.3f} s "
                  f"({summary['updates_per_second']:,.0f} updates/s); run in {directory}", highlight=False, soft_wrap=True)


# the jobs of the later stages register themselves on `app`
from r1lab import cli_llm, cli_report, cli_rl  # noqa: E402, F401


def main() -> None:
    app(prog_name="r1lab")


if __name__ == "__main__":
    sys.exit(main())
