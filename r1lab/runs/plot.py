"""`r1lab plot RUN_DIR`: draw a run's metrics to PNG curves with matplotlib."""

from __future__ import annotations

import math
from pathlib import Path

from r1lab.runs.run_dir import read_metrics

SKIPPED = {"step", "time"}
RATE_WORDS = ("rate", "accuracy", "fraction", "share", "pass_at", "reached_goal")
X_LABELS = {"maze": "episode", "ppo": "env steps", "trpo": "env steps", "reinforce": "env steps"}


def is_rate(key: str, values: list[float]) -> bool:
    """A share in [0, 1] by name and by value: drawn on a 0-1 axis, so that 0.98 does not look like a drop."""
    return any(word in key for word in RATE_WORDS) and all(0.0 <= v <= 1.0 for v in values)


def x_label(run_dir: Path) -> str:
    import yaml

    path = run_dir / "config.yaml"
    job = (yaml.safe_load(path.read_text()) or {}).get("job") if path.is_file() else None
    return X_LABELS.get(job, "step")


def numeric_series(records: list[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """{metric: (steps, values)} for every metric that is a finite number somewhere in the run."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                steps, values = series.setdefault(key, ([], []))
                steps.append(record["step"])
                values.append(value)
    return series


def plot_run(run_dir: str | Path, keys: list[str] | None = None, smooth: int = 1) -> list[Path]:
    """Write plots/METRIC.png for each metric (or `keys`) and plots/curves.png with all of them.

    Constant series (nothing to see) are left out unless asked for by name; rates are drawn on a
    0-1 axis. `smooth` > 1 overlays a moving average over that many points. Returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    series = numeric_series(read_metrics(run_dir))
    if keys:
        missing = [k for k in keys if k not in series]
        if missing:
            raise KeyError(f"{run_dir}: no metric {', '.join(missing)}; metrics: {', '.join(sorted(series))}")
        series = {k: series[k] for k in keys}
    else:
        series = {k: v for k, v in series.items() if len(set(v[1])) > 1}
    xlabel = x_label(run_dir)
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    written = []
    for key, (steps, values) in series.items():
        fig, ax = plt.subplots(figsize=(6, 3.6))
        _draw(ax, key, steps, values, smooth, xlabel)
        fig.tight_layout()
        path = out / f"{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    if series:
        cols = min(3, len(series))
        rows = math.ceil(len(series) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
        for ax, (key, (steps, values)) in zip(axes.flat, series.items()):
            _draw(ax, key, steps, values, smooth, xlabel)
        for ax in list(axes.flat)[len(series):]:
            ax.axis("off")
        fig.tight_layout()
        path = out / "curves.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def _draw(ax, key: str, steps: list[float], values: list[float], smooth: int, xlabel: str = "step") -> None:
    sparse = len(values) < 20  # evaluations every K steps: show the points, not only the line
    ax.plot(steps, values, lw=1, alpha=0.45 if smooth > 1 and not sparse else 1.0, marker="o" if sparse else None)
    if smooth > 1 and not sparse and len(values) >= smooth:
        window = [sum(values[i - smooth + 1 : i + 1]) / smooth for i in range(smooth - 1, len(values))]
        ax.plot(steps[smooth - 1 :], window, lw=1.8)
    ax.set_title(key)
    ax.set_xlabel(xlabel)
    if is_rate(key, values):
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
