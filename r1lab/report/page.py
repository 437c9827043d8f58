"""The report page of one run and the comparison page of several, rendered with Jinja2.

    write_report(run_dir)             -> RUN_DIR/report.html
    write_comparison(run_dirs, path)  -> one page, the runs' curves overlaid, their summaries side by side

A page is one self-contained HTML file: styles, the table script and the charts (inline SVG) are
inside it, nothing is fetched, and it opens from disk in any browser. The template escapes every
value (autoescape), so a completion that contains `<script>` shows as text; only the SVG that
matplotlib drew is placed in the page as markup.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from r1lab.report.completions import CompletionTable, example_table, sample_table, think_parts
from r1lab.report.curves import COLORS, Curve, grouped, overlaid_curves, run_curves
from r1lab.report.figures import (
    BeforeAfter,
    Table,
    before_after,
    evaluations_table,
    flat_figures,
    format_change,
    format_figure,
    scalar_figures,
    stage_table,
)
from r1lab.report.jobs import Reproduction, job_command, reproduce
from r1lab.report.maze import MazeView, maze_view
from r1lab.report.run_data import RunRecord, read_run
from r1lab.runs import ConfigError
from r1lab.runs.plot import X_LABELS


@dataclass
class RunSection:
    """What the page shows of one run (or one stage of a pipeline run). `scope` prefixes the ids
    of the stage's elements, so that a page with several stages has no id twice."""

    scope: str
    title: str
    job: str
    directory: str
    facts: list[tuple[str, str]]
    reproduction: Reproduction
    figures: list[tuple[str, Any]]
    before_after: list[BeforeAfter]
    stage_table: Table | None
    evaluations: Table | None
    curves: list[tuple[str, list[Curve]]]  # (metric group, its charts)
    completions: CompletionTable | None
    examples: CompletionTable | None
    maze: MazeView | None
    config_yaml: str
    skipped_lines: int
    stages: list[RunSection] = field(default_factory=list)


@dataclass
class Comparison:
    """The comparison page: the runs, the config keys where they differ, their figures side by
    side and their shared curves overlaid."""

    runs: list[tuple[str, RunSection]]
    config_differences: Table
    figures: Table
    curves: list[tuple[str, list[Curve]]]


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the run's report (default RUN_DIR/report.html) from its files alone; returns the path."""
    run_dir = Path(run_dir)
    page = render("report.html.j2", run=run_section(read_run(run_dir)), generated=_now())
    return write_text_atomic(Path(output) if output is not None else run_dir / "report.html", page)


def write_comparison(run_dirs: list[str | Path], output: str | Path) -> Path:
    """Write one page comparing the runs (at least two); returns the path."""
    if len(run_dirs) < 2:
        raise ConfigError("compare needs at least two run directories")
    runs = [read_run(directory) for directory in run_dirs]
    labels = run_labels(runs)
    sections = [run_section(run, curves=False) for run in runs]
    comparison = Comparison(
        runs=list(zip(labels, sections)),
        config_differences=config_differences(runs, labels),
        figures=side_by_side([flat_figures(run.summary) for run in runs], labels),
        curves=grouped(overlaid_curves([(label, run.metrics) for label, run in zip(labels, runs)])),
    )
    return write_text_atomic(Path(output), render("compare.html.j2", comparison=comparison, generated=_now()))


def run_section(run: RunRecord, scope: str = "", curves: bool = True) -> RunSection:
    """The page's view of a run: each part is left empty when the run has no file for it."""
    summary = run.summary
    return RunSection(
        scope=scope,
        title=" ".join(job_command(run.job, run.config).words),
        job=run.job,
        directory=str(run.directory),
        facts=run_facts(run),
        reproduction=reproduce(run.job, run.config),
        figures=scalar_figures(summary),
        before_after=before_after(summary),
        stage_table=stage_table(summary),
        evaluations=evaluations_table(summary),
        curves=grouped(run_curves(run.metrics, id_prefix=scope, xlabel=X_LABELS.get(run.job, "step"))) if curves else [],
        completions=sample_table(run.samples),
        examples=example_table(summary.get("evaluations")),
        maze=maze_view(summary, run.q_table),
        config_yaml=yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True),
        skipped_lines=run.skipped_lines,
        stages=[run_section(stage, f"{scope}{stage.name}:", curves) for stage in run.stages],
    )


def run_facts(run: RunRecord) -> list[tuple[str, str]]:
    """The header line: job, last step, wall time, when the run finished (or that it has not)."""
    facts = [("job", run.job)]
    if run.metrics:
        facts.append(("last step", format_figure(run.metrics[-1].get("step"))))
    seconds = run.summary.get("wall_seconds")
    if isinstance(seconds, (int, float)):
        facts.append(("wall time", format_seconds(seconds)))
    summary_file = run.directory / "summary.json"
    if summary_file.is_file():
        facts.append(("finished", datetime.fromtimestamp(summary_file.stat().st_mtime).strftime("%Y-%m-%d %H:%M")))
    else:
        facts.append(("finished", "not yet (no summary.json)"))
    return facts


def run_labels(runs: list[RunRecord]) -> list[str]:
    """Short names for the runs: the directory's name, or with its parent's where names repeat."""
    labels = [run.name for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{run.directory.resolve().parent.name}/{run.name}" for run in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({i + 1})" for i, label in enumerate(labels)]
    return labels


def config_differences(runs: list[RunRecord], labels: list[str]) -> Table:
    """The config keys (dotted for nested ones) whose values are not the same in every run."""
    flat = [dict(_leaves(run.config)) for run in runs]
    keys = list(dict.fromkeys(key for config in flat for key in config))
    rows = [[key, *(_shown(config.get(key, "(absent)")) for config in flat)] for key in keys
            if len({repr(config.get(key, "(absent)")) for config in flat}) > 1]
    return Table(["key", *labels], rows)


def side_by_side(figures: list[dict[str, Any]], labels: list[str]) -> Table:
    """One row per figure any run reports, one column per run."""
    keys = list(dict.fromkeys(key for run in figures for key in run))
    return Table(["figure", *labels], [[key, *(run.get(key) for run in figures)] for key in keys])


def format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@functools.cache
def environment():
    """The Jinja2 environment of the templates in r1lab/report/templates, escaping every value."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("r1lab.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(figure=format_figure, change=format_change, think_parts=think_parts)
    env.globals.update(version=_version(), colors=COLORS)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write beside the destination, then rename: a browser never opens half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def _leaves(config: dict[str, Any], prefix: str = ""):
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _shown(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else yaml.safe_dump(
        value, default_flow_style=True).strip()


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M")


def _version() -> str:
    from r1lab import __version__

    return __version__
