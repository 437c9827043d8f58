"""Everything a report shows, read back from a run directory alone.

    DIR/config.yaml      {"job": ..., "config": {...}}   required: what makes DIR a run
    DIR/metrics.jsonl    the curves                        required, unless the run has stages
    DIR/samples.jsonl    sampled completions               optional
    DIR/summary.json     the job's final figures           optional (a run still going has none)
    DIR/q_table.npy      the maze's learned Q table        optional
    DIR/stages/NAME/     a pipeline's stages, each a run directory of its own

Nothing here needs the job's code, so a report can be rebuilt for any old run. A line that does
not parse (a run killed mid-write leaves half a line) is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from r1lab.runs import ConfigError


@dataclass
class RunRecord:
    """One run directory's files, parsed; missing optional files are empty values."""

    directory: Path
    job: str
    config: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    q_table: np.ndarray | None = None
    stages: list[RunRecord] = field(default_factory=list)
    skipped_lines: int = 0  # unreadable JSONL lines, shown on the page so that a gap is never silent

    @property
    def name(self) -> str:
        return self.directory.resolve().name


def read_run(directory: str | Path, require_metrics: bool = True) -> RunRecord:
    """Read a run directory; one without config.yaml, or (with `require_metrics`) without metrics
    and stages, is refused. Stages are read leniently: a stage that logs no curves still has a summary."""
    directory = Path(directory)
    job, config = read_job(directory)
    metrics, bad_metrics = read_jsonl(directory / "metrics.jsonl")
    samples, bad_samples = read_jsonl(directory / "samples.jsonl")
    stages = [read_run(path, require_metrics=False) for path in stage_directories(directory)]
    if require_metrics and not metrics and not stages:
        raise ConfigError(f"{directory}: no metrics in metrics.jsonl; nothing to report yet")
    return RunRecord(directory, job, config, metrics, samples, read_summary(directory), read_q_table(directory),
                     stages, bad_metrics + bad_samples)


def read_job(directory: Path) -> tuple[str, dict[str, Any]]:
    """(job name, config mapping) from config.yaml, the file every job writes first."""
    path = directory / "config.yaml"
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    if not path.is_file():
        raise ConfigError(f"{directory}: not a run directory (no config.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'job' and 'config'")
    config = data.get("config")
    return str(data.get("job") or "unknown"), config if isinstance(config, dict) else {}


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(the rows that are JSON objects, how many lines were not); a missing file is no rows."""
    if not path.is_file():
        return [], 0
    rows, skipped = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def read_summary(directory: Path) -> dict[str, Any]:
    path = directory / "summary.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}  # summary.json is written atomically, so this is a hand-edited file; show the rest
    return data if isinstance(data, dict) else {}


def read_q_table(directory: Path) -> np.ndarray | None:
    path = directory / "q_table.npy"
    if not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None


def stage_directories(directory: Path) -> list[Path]:
    """The run directories under DIR/stages/, in name order (the pipeline numbers them)."""
    root = directory / "stages"
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if (path / "config.yaml").is_file())
