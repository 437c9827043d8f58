"""The report commands of `r1lab`: `report` (one run's page) and `compare` (several runs on one page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from r1lab.cli import app, clear_errors, console


@app.command()
@clear_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (holding config.yaml and metrics.jsonl).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write (default RUN_DIR/report.html).")] = None,
):
    """Write RUN_DIR/report.html: the job, its command, the summary, the curves and the completions, in one file."""
    from r1lab.report import write_report

    path = write_report(run_dir, output)
    console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command()
@clear_errors
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write.")] = Path("compare.html"),
):
    """Write one page with the runs' curves overlaid and their summaries and config differences side by side."""
    from r1lab.report import write_comparison

    path = write_comparison(run_dirs, output)
    console.print(f"wrote {path} ({len(run_dirs)} runs)", highlight=False, soft_wrap=True)
