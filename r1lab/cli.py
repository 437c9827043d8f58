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
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    help="r1lab: the road from Q-learning to DeepSeek R1, as training code you can run and read.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

RunDir = Annotated[Optional[Path], typer.Option("--run-dir", help="Where the run lives (default runs/JOB-TIME).")]
Preset = Annotated[Optional[str], typer.Option("--preset", "-p", help="A shipped preset name or a YAML file.")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override any config key: key=value.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables.")]


def clear_errors(command):
    """Bad input ends the command with one red line naming the problem, and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from r1lab.runs import ConfigError

        try:
            return command(*args, **kwargs)
        except (ConfigError, FileNotFoundError, KeyError, ValueError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper


@app.command()
@clear_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding metrics.jsonl.")],
    metric: Annotated[Optional[list[str]], typer.Option("--metric", "-m", help="Only these metrics.")] = None,
    smooth: Annotated[int, typer.Option(help="Overlay a moving average over this many points.")] = 1,
):
    """Draw a run's metrics to PNG curves in RUN_DIR/plots/."""
    from r1lab.runs import plot_run

    paths = plot_run(run_dir, metric, smooth=smooth)
    console.print(f"wrote {len(paths)} plots to {run_dir / 'plots'}")


def main() -> None:
    app(prog_name="r1lab")


if __name__ == "__main__":
    sys.exit(main())
