"""A run's metric curves as inline SVG, drawn with matplotlib's SVG backend.

One chart per metric, named as the metric is named in metrics.jsonl, so that a curve on the page,
a line of the JSONL and a TensorBoard tag are found by the same word. Charts stay small: long
series are thinned to `MAX_POINTS`, constant series are left out (a flat line says less than the
figure in the summary), and text is kept as SVG text rather than glyph outlines.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from r1lab.runs.plot import is_rate, numeric_series

MAX_POINTS = 500
SPARSE = 20  # fewer points than this (evaluations every K steps): draw the points, not only the line
# matplotlib names every group (figure_1, axes_1, line2d_3, ...): the same ids in every chart, which
# one HTML page must not repeat. Clip paths and markers, which are referenced, have hashed ids.
UNREFERENCED_ID = re.compile(r' id="[A-Za-z][\w.]*_\d+"')
LAST_GROUPS = ("time",)  # where the time went: read after what was learned
COLORS = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


@dataclass
class Line:
    """One series on a chart: its legend label, steps (x) and values (y)."""

    label: str
    steps: list[float]
    values: list[float]


@dataclass
class Curve:
    """A drawn chart: the metric's name and its SVG, ready to be placed in the page as is."""

    name: str
    svg: Markup
    points: int


def chart_series(records: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """{metric: (steps, values)} for every numeric metric that changes during the run, in log order."""
    return {name: (steps, values) for name, (steps, values) in numeric_series(records).items()
            if min(values) != max(values)}


def metric_group(name: str) -> str:
    """The prefix that groups a metric with its kin: "eval" for eval/accuracy, "" for reward."""
    return name.split("/", 1)[0] if "/" in name else ""


def reading_order(names: list[str]) -> list[str]:
    """Top-level metrics first, then each prefix group (eval/, rewards/, ...) in the order the run
    first logged it, timings last; within a group, log order."""
    groups = list(dict.fromkeys(metric_group(name) for name in names))
    rank = {group: (0 if group == "" else 2 if group in LAST_GROUPS else 1, i) for i, group in enumerate(groups)}
    return sorted(names, key=lambda name: rank[metric_group(name)])


def grouped(curves: list[Curve]) -> list[tuple[str, list[Curve]]]:
    """[(group, its curves)] in the curves' order, for a heading per group."""
    groups: dict[str, list[Curve]] = {}
    for curve in curves:
        groups.setdefault(metric_group(curve.name), []).append(curve)
    return list(groups.items())


def thin(steps: list[float], values: list[float], max_points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most `max_points` evenly spaced points, first and last kept.

    Every kept point is a logged value, not an average: a noisy curve stays as noisy as it was.
    """
    if len(steps) <= max_points:
        return steps, values
    keep = np.unique(np.linspace(0, len(steps) - 1, max_points).round().astype(int))
    return [steps[i] for i in keep], [values[i] for i in keep]


def is_unit_metric(name: str, lines: list[Line]) -> bool:
    """A rate, accuracy, fraction or share that stays in [0, 1]: drawn on a fixed 0..1 axis, so
    that 0.31 -> 0.33 does not look like a leap (the rule `r1lab plot` uses)."""
    return is_rate(name.lower(), [v for line in lines for v in line.values])


class Canvas:
    """One small matplotlib figure, redrawn for every chart: `with Canvas() as canvas: canvas.draw(...)`.

    Laying out axes and ticks is most of what a chart costs; keeping the figure and swapping its
    lines makes a page of thirty charts take a fraction of a second. The SVG settings are set once
    for the block, as copying matplotlib's settings per chart would cost as much again.
    """

    def __init__(self, width: float = 3.4, height: float = 2.0, xlabel: str = "step"):
        from matplotlib.figure import Figure  # not pyplot: no global figure state, no GUI backend
        from matplotlib.ticker import MaxNLocator

        self.figure = Figure(figsize=(width, height))
        self.figure.subplots_adjust(left=0.15, right=0.97, top=0.91, bottom=0.19)
        self.axes = self.figure.add_subplot()
        self.axes.spines[["top", "right"]].set_visible(False)
        self.axes.grid(alpha=0.3, lw=0.6)
        self.axes.tick_params(labelsize=7, length=2.5)
        # few ticks: a small chart reads better, and draws faster; steps are whole numbers
        self.axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        self.axes.yaxis.set_major_locator(MaxNLocator(nbins=4))
        self.axes.set_xlabel(xlabel, fontsize=7, labelpad=1)
        self._settings = None

    def __enter__(self) -> Canvas:
        import matplotlib

        self._settings = matplotlib.rc_context({"svg.fonttype": "none"})  # text stays text, not outlines
        self._settings.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._settings.__exit__(*exc)

    def draw(self, name: str, lines: list[Line], element_id: str | None = None) -> Curve:
        axes = self.axes
        for artist in [*axes.lines, *([axes.legend_] if axes.legend_ else [])]:
            artist.remove()
        axes.autoscale(True)
        points = 0
        for color, line in zip(COLORS * (1 + len(lines) // len(COLORS)), lines):
            steps, values = thin(line.steps, line.values)
            points += len(steps)
            axes.plot(steps, values, lw=1.3, color=color, label=line.label,
                      marker="o" if len(steps) < SPARSE else None, markersize=3)
        axes.relim()
        axes.autoscale_view()
        if is_unit_metric(name, lines):
            axes.set_ylim(-0.03, 1.03)
        if len(lines) > 1:
            axes.legend(fontsize=6.5, frameon=False, loc="best", handlelength=1.2)
        element_id = element_id or name
        return Curve(name, inline_svg(self._svg(element_id), element_id, name), points)

    def _svg(self, salt: str) -> str:
        import matplotlib

        buffer = io.StringIO()
        # svg.hashsalt names the clip paths and markers: a salt per chart keeps the ids of many SVGs
        # in one page apart, and the same run always draws the same bytes (restored on __exit__)
        matplotlib.rcParams["svg.hashsalt"] = salt
        self.figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        return buffer.getvalue()


def inline_svg(svg: str, element_id: str, title: str) -> Markup:
    """An SVG document as an element of an HTML page: no XML prolog or doctype, the given id, and a
    <title> (the browser's tooltip and the accessible name)."""
    start = svg.index("<svg")
    svg = svg[start:]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.DOTALL)
    svg = UNREFERENCED_ID.sub("", svg)
    head_end = svg.index(">") + 1
    head = svg[:head_end].replace("<svg", f'<svg id="{escape(element_id)}" role="img"', 1)
    return Markup(f"{head}<title>{escape(title)}</title>{svg[head_end:]}")


def run_curves(records: list[dict[str, Any]], id_prefix: str = "", xlabel: str = "step") -> list[Curve]:
    """One chart per changing metric of one run, in reading order."""
    series = chart_series(records)
    with Canvas(xlabel=xlabel) as canvas:
        return [canvas.draw(name, [Line(name, *series[name])], id_prefix + name) for name in reading_order(list(series))]


def overlaid_curves(runs: list[tuple[str, list[dict[str, Any]]]]) -> list[Curve]:
    """One chart per metric that at least two of the runs log (or the one run, if alone), a line per run."""
    series = [(label, chart_series(records)) for label, records in runs]
    names = reading_order(list(dict.fromkeys(name for _, found in series for name in found)))
    needed = min(2, len(runs))
    curves = []
    with Canvas() as canvas:
        for name in names:
            lines = [Line(label, *found[name]) for label, found in series if name in found]
            if len(lines) >= needed:
                curves.append(canvas.draw(name, lines))
    return curves
