"""The run report: one self-contained HTML page per run, and a page that compares runs.

    from r1lab.report import write_report, write_comparison
    write_report("runs/r1-zero-20250101-120000")          # -> that dir's report.html
    write_comparison(["runs/a", "runs/b"], "compare.html")

The page is built from the run directory alone (config.yaml, metrics.jsonl, samples.jsonl,
summary.json, q_table.npy, stages/), so it can be rebuilt for any old run:

    run_data.py     reading a run directory back
    jobs.py         which command runs each job, and the command line that reproduces a run
    figures.py      summary.json as tables (figures, before/after, stages, evaluations)
    curves.py       metric curves as inline SVG (matplotlib)
    completions.py  samples.jsonl and held-out examples as tables, <think> set apart
    maze.py         the maze's Q table and greedy path
    page.py         the pages, rendered with Jinja2 from templates/
"""

from r1lab.report.jobs import JobCommand, register_job, reproduce
from r1lab.report.page import write_comparison, write_report
from r1lab.report.run_data import RunRecord, read_run

__all__ = ["JobCommand", "RunRecord", "read_run", "register_job", "reproduce", "write_comparison", "write_report"]
