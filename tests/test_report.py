"""The run report: built from a run directory alone, it shows the job, the command that reproduces it,
the summary, the curves and the completions, escapes what the model wrote, and compares runs."""

import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from r1lab.cli import app
from r1lab.pipelines.r1_zero import GRPOJobConfig, run_grpo_job
from r1lab.policy_gradient import CONFIGS, train_ppo
from r1lab.report import write_comparison, write_report
from r1lab.report.completions import MAX_ROWS, sample_table, think_parts, thinned
from r1lab.report.curves import MAX_POINTS, Line, chart_series, is_unit_metric, reading_order, thin
from r1lab.report.figures import format_figure
from r1lab.report.jobs import reproduce
from r1lab.runs import ConfigError, load_config, parse_overrides, read_metrics, to_dict
from r1lab.tabular import QLearningConfig, train_maze


# ---- runs: short seeded jobs, once per session ------------------------------------------------------
@pytest.fixture(scope="session")
def grpo_run(tmp_path_factory, qwen2_dir):
    """A GRPO job on the small Qwen2 fixture: 3 steps, samples every step, held-out evaluation at 0, 2, 3."""
    directory = tmp_path_factory.mktemp("grpo-run")
    config = GRPOJobConfig(model=str(qwen2_dir), group_size=4, prompts_per_step=2, max_new_tokens=8, steps=3,
                           micro_batch_size=8, checkpoint_every=100, log_samples_every=1, save_model=False, lr=1e-3,
                           eval_items=4, eval_k=2, eval_every=2, seed=1)
    run_grpo_job(config, directory, quiet=True)
    return directory


@pytest.fixture(scope="session")
def maze_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("maze-run")
    train_maze(QLearningConfig(tensorboard=False), directory, quiet=True)
    return directory


@pytest.fixture(scope="session")
def ppo_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ppo-run")
    config = load_config(CONFIGS["ppo"], "ppo-cartpole", sets=["total_steps=2048", "tensorboard=false", "eval_episodes=2"])
    train_ppo(config, directory, quiet=True)
    return directory


def fake_run(directory: Path, job="grpo", config=None, metrics=None, samples=None, summary=None) -> Path:
    """A run directory written by hand: exactly the rows a test needs."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump({"job": job, "config": config or {"seed": 0}}))
    rows = metrics if metrics is not None else [{"step": s, "reward": s / 10, "loss": 1 - s / 10} for s in range(1, 6)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    if samples is not None:
        (directory / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in samples))
    if summary is not None:
        (directory / "summary.json").write_text(json.dumps(summary))
    return directory


# ---- reading the page back -------------------------------------------------------------------------
class Page(HTMLParser):
    """The parts of a report a reader sees: every table's rows of cell texts (by id or class), the
    ids, the SVG charts' titles and the script tags."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: list[dict] = []
        self.ids: list[str] = []
        self.svg_titles: list[str] = []
        self.scripts = 0
        self._open: list[dict] = []
        self._cell: list[str] | None = None
        self._in_svg_title = False
        self._svg_depth = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "script":
            self.scripts += 1
        if tag == "svg":
            self._svg_depth += 1
        if tag == "title" and self._svg_depth:
            self._in_svg_title = True
            self.svg_titles.append("")
        if tag == "table":
            self._open.append({"id": attrs.get("id"), "class": attrs.get("class", ""), "head": [], "rows": []})
        if tag == "thead" and self._open:
            self._open[-1]["in_head"] = True
        if tag == "tr" and self._open:
            self._open[-1]["row"] = []
        if tag in ("td", "th") and self._open:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg_depth -= 1
        if tag == "thead" and self._open:
            self._open[-1]["in_head"] = False
        if tag == "title":
            self._in_svg_title = False
        if tag in ("td", "th") and self._open and self._cell is not None:
            self._open[-1]["row"].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._open:
            table = self._open[-1]
            (table["head"] if table.get("in_head") else table["rows"]).append(table.pop("row"))
        if tag == "table" and self._open:
            self.tables.append(self._open.pop())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_svg_title:
            self.svg_titles[-1] += data

    def table(self, key: str) -> dict:
        found = [t for t in self.tables if t["id"] == key or key in t["class"].split()]
        assert found, f"no table {key}"
        return found[0]

    def column(self, key: str, name: str) -> list[str]:
        table = self.table(key)
        index = table["head"][0].index(name)
        return [row[index] for row in table["rows"]]


def page_of(run_dir) -> tuple[str, Page]:
    html = write_report(run_dir).read_text()
    return html, Page(html)


def rebuilt_config(command: str, job_class, preset=None) -> dict:
    """The config that running `command` would build (its --env and --set options, over the preset)."""
    words = shlex.split(command.replace("\\\n", " "))
    sets = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    named = {"env_id": words[words.index("--env") + 1]} if "--env" in words else {}
    return json.loads(json.dumps(to_dict(load_config(job_class, preset, overrides=named, sets=sets))))


# ---- one run's page -----------------------------------------------------------------------------------
def test_the_report_of_a_grpo_run_shows_its_figures_curves_and_every_completion(grpo_run):
    html, page = page_of(grpo_run)
    summary = json.loads((grpo_run / "summary.json").read_text())
    before_after = {row[0]: row[1:3] for row in page.table("before-after")["rows"]}
    for metric, before in summary["before"].items():
        assert before_after[metric] == [format_figure(before), format_figure(summary["after"][metric])]
    figures = dict(page.table("scalar-figures")["rows"])
    assert figures["steps"] == "3" and figures["reward_last"] == format_figure(summary["reward_last"])

    samples = [json.loads(line) for line in (grpo_run / "samples.jsonl").read_text().splitlines()]
    assert len(page.table("completions-table")["rows"]) == len(samples) == 3 * 8  # 3 steps x 2 prompts x G=4
    assert page.column("completions-table", "step") == [str(row["step"]) for row in samples]
    assert len(page.table("examples-table")["rows"]) == sum(len(e["examples"]) for e in summary["evaluations"])
    assert [row[0] for row in page.table("evaluations")["rows"]] == ["0", "2", "3"]

    logged: dict[str, set] = {}
    for record in read_metrics(grpo_run):
        for key, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("step", "time"):
                logged.setdefault(key, set()).add(value)
    changing = {key for key, values in logged.items() if len(values) > 1}
    assert set(page.svg_titles) == changing and {"entropy", "time/step"} <= changing  # lr is constant: no chart
    assert all(f'<svg id="{metric}"' in html for metric in changing)
    assert len(page.ids) == len(set(page.ids)), "an id repeats"


def test_the_page_is_self_contained(grpo_run):
    html, page = page_of(grpo_run)
    assert page.scripts == 1  # the inline table script, nothing loaded
    for outside in ("<script src", "<link", "@import", "url(http", 'src="http', 'href="http', "<?xml", "<!DOCTYPE svg"):
        assert outside not in html


def test_the_command_on_the_page_rebuilds_the_runs_config(grpo_run, maze_run, ppo_run):
    for run_dir, job_class, preset in ((grpo_run, GRPOJobConfig, None), (maze_run, QLearningConfig, None),
                                       (ppo_run, CONFIGS["ppo"], "ppo-cartpole")):
        stored = yaml.safe_load((run_dir / "config.yaml").read_text())
        reproduction = reproduce(stored["job"], stored["config"])
        assert reproduction.note == ""
        assert rebuilt_config(reproduction.command, job_class, preset) == stored["config"], reproduction.command
    command = reproduce("ppo", yaml.safe_load((ppo_run / "config.yaml").read_text())["config"]).command
    assert " ".join(command.replace("\\\n", " ").split()).startswith("r1lab train ppo --env CartPole-v1 --set")


def test_an_r1_zero_run_is_reproduced_with_the_r1_zero_command(tmp_path):
    config = json.loads(json.dumps(to_dict(load_config(GRPOJobConfig, sets=["template=r1-zero", "steps=60",
                                                                           "eval_every=10", "beta=0.04"]))))
    assert reproduce("grpo", config).command == "r1lab r1-zero --set beta=0.04"


def test_completions_are_escaped_and_their_think_part_set_apart(tmp_path):
    attack = "<script>alert('completion')</script>"
    samples = [{"step": 1, "prompt": "<b>2+2</b>?", "completion": f" <think>{attack}</think> <answer>4</answer>",
                "reward": 2.0, "advantage": 1.0, "answer": "4", "rewards": {"accuracy": 1.0, "format": 1.0}},
               {"step": 2, "question": "3+3?", "completion": attack, "reward": 0.0, "advantage": -1.0, "answer": "6",
                "rewards": {"accuracy": 0.0, "format": 0.0, "language": 1.0}}]
    html, page = page_of(fake_run(tmp_path / "run", samples=samples))
    assert "<script>alert" not in html and "<b>2+2" not in html
    assert html.count("&lt;script&gt;alert(&#39;completion&#39;)&lt;/script&gt;") == 2
    assert page.scripts == 1
    assert '<div class="think"><span class="think-label">think</span>&lt;think&gt;&lt;script&gt;' in html
    table = page.table("completions-table")
    assert table["head"][0] == ["step", "prompt", "answer", "completion", "accuracy", "format", "language",
                                "reward", "advantage"]
    assert page.column("completions-table", "prompt") == ["<b>2+2</b>?", "3+3?"]  # shown as text
    assert page.column("completions-table", "language") == ["–", "1"]


@pytest.mark.parametrize("text, parts", [
    (" <think>a</think> <answer>1</answer>", [("text", " "), ("think", "<think>a</think>"), ("text", " <answer>1</answer>")]),
    ("a</think> b", [("think", "a</think>"), ("text", " b")]),  # the prompt opened the think part
    ("x <think>cut off", [("text", "x "), ("think", "<think>cut off")]),
    ("no reasoning", [("text", "no reasoning")]),
    ("", [("text", "")]),
    ("<think>1</think><think>2</think>", [("think", "<think>1</think>"), ("think", "<think>2</think>")]),
])
def test_think_parts_split_a_completion_and_join_back_to_it(text, parts):
    assert think_parts(text) == parts
    assert "".join(piece for _, piece in parts) == text


def test_a_maze_report_shows_the_q_table_and_the_greedy_path(maze_run):
    html, page = page_of(maze_run)
    assert "S1 → S2 → S5 → S6 → S9" in html and "optimal: 4 moves" in html
    q = np.load(maze_run / "q_table.npy")
    rows = page.table("q-table")["rows"]
    assert len(rows) == 7  # the seed's maze: 9 cells, 2 walls
    assert rows[0] == ["S1 (S)", *(f"{v:.3f}" for v in q[0])]
    maze = page.table("maze")["rows"]
    assert [row[2] for row in maze] == ["#", "↓", "E"]
    assert {"episode_return", "episode_length", "epsilon"} <= set(page.svg_titles)


def test_a_ppo_report_shows_its_returns_and_losses(ppo_run):
    _, page = page_of(ppo_run)
    summary = json.loads((ppo_run / "summary.json").read_text())
    figures = dict(page.table("scalar-figures")["rows"])
    assert figures["eval_return_mean"] == format_figure(summary["eval_return_mean"])
    assert figures["seconds_by_phase.improve"] == format_figure(summary["seconds_by_phase"]["improve"])
    assert {"episode_return", "episode_length", "policy_loss", "value_loss", "entropy"} <= set(page.svg_titles)


def test_missing_samples_and_summary_leave_their_sections_out(tmp_path):
    html, page = page_of(fake_run(tmp_path / "run"))
    assert "completions" not in page.ids and "summary" not in page.ids
    assert "not yet (no summary.json)" in html
    assert set(page.svg_titles) == {"reward", "loss"}


def test_an_unknown_job_still_gets_its_config_and_a_command(tmp_path):
    run = fake_run(tmp_path / "run", job="my-job", config={"beta": 0.05, "critic": {"lr": 1e-5}})
    html, _ = page_of(run)
    assert "r1lab my-job --set beta=0.05 --set critic.lr=1.0e-05" in html
    assert "r1lab has no command for the job" in html


def test_a_pipeline_run_gets_its_stage_table_and_a_section_per_stage(tmp_path):
    run = fake_run(tmp_path / "r1", job="r1", summary={"table": [
        {"stage": "cold-start", "accuracy": 0.2, "format_rate": 0.9},
        {"stage": "reasoning-rl", "accuracy": 0.5, "language_consistency": 0.97}]})
    for name in ("1-cold-start", "2-reasoning-rl"):
        fake_run(run / "stages" / name, job="sft", summary={"steps": 5})
    _, page = page_of(run)
    stages = page.table("stage-table")
    assert stages["head"][0] == ["stage", "accuracy", "format_rate", "language_consistency"]
    assert stages["rows"][1] == ["reasoning-rl", "0.5", "–", "0.97"]
    assert {"1-cold-start:stage", "2-reasoning-rl:stage", "2-reasoning-rl:reward"} <= set(page.ids)
    assert page.svg_titles.count("reward") == 3  # the pipeline's own curves, and each stage's
    assert len(page.ids) == len(set(page.ids)), "an id repeats"


def test_unreadable_lines_are_skipped_and_counted(tmp_path):
    run = fake_run(tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 6, "rew')  # a run killed mid-write
    html, _ = page_of(run)
    assert "1 unreadable JSONL line skipped" in html


# ---- the pieces ------------------------------------------------------------------------------------------
def test_curves_leave_out_constant_series_and_thin_long_ones():
    records = [{"step": s, "time": s * 0.1, "lr": 1e-4, "reward": s % 7, "name": "x"} for s in range(5000)]
    series = chart_series(records)
    assert list(series) == ["reward"]
    steps, values = thin(*series["reward"])
    assert len(steps) == MAX_POINTS and steps[0] == 0 and steps[-1] == 4999
    assert all(values[i] == steps[i] % 7 for i in range(len(steps)))


def test_rates_and_accuracies_in_0_1_get_a_unit_axis():
    inside, outside = Line("a", [1, 2], [0.2, 0.3]), Line("b", [1, 2], [0.2, 1.5])
    assert is_unit_metric("eval/format_rate", [inside]) and is_unit_metric("accuracy", [inside])
    assert not is_unit_metric("reward", [inside]) and not is_unit_metric("accuracy", [outside])


def test_curves_read_top_level_metrics_first_and_timings_last():
    names = ["eval/accuracy", "time/step", "reward", "rewards/format/mean", "loss", "eval/format_rate"]
    assert reading_order(names) == ["reward", "loss", "eval/accuracy", "eval/format_rate", "rewards/format/mean",
                                    "time/step"]


def test_long_completion_tables_keep_whole_steps():
    samples = [{"step": s, "question": "q", "completion": "c", "reward": 0.0} for s in range(1, 501) for _ in range(8)]
    table = thinned(sample_table(samples), max_rows=400)
    kept = sorted({row["step"] for row in table.rows})
    assert len(table.rows) == 8 * len(kept) <= 400 and kept[0] == 1 and kept[-1] == 500
    assert table.total == 4000 and "of 4000 rows" in table.note
    assert MAX_ROWS >= 1000


def test_figures_read_as_a_person_writes_them():
    assert [format_figure(v) for v in (None, True, 12345, 0.546875, 85.65, 123456.7, 2.2e-16, 0.0)] == \
        ["–", "yes", "12,345", "0.5469", "85.65", "123,457", "2.20e-16", "0"]


# ---- comparing runs -----------------------------------------------------------------------------------------
def test_compare_overlays_the_shared_curves_and_puts_summaries_side_by_side(tmp_path):
    a = fake_run(tmp_path / "beta-0", config={"beta": 0.0, "seed": 0}, summary={"reward_last": 0.5})
    b = fake_run(tmp_path / "beta-0.04", config={"beta": 0.04, "seed": 0}, summary={"reward_last": 0.7},
                 metrics=[{"step": s, "reward": s / 5, "kl": s / 100} for s in range(1, 6)])
    html = write_comparison([a, b], tmp_path / "compare.html").read_text()
    page = Page(html)
    assert page.table("differences")["rows"] == [["beta", "0", "0.04"]]  # seed is the same: not shown
    assert page.table("side-by-side")["rows"] == [["reward_last", "0.5", "0.7"]]
    assert page.svg_titles == ["reward"]  # loss and kl are each logged by one run only
    chart = html[html.index('<svg id="reward"'):]
    chart = chart[:chart.index("</svg>")]
    assert "beta-0.04" in chart and ">beta-0<" in chart.replace("</text>", "<")  # the legend


def test_compare_refuses_a_single_run(tmp_path):
    with pytest.raises(ConfigError, match="at least two"):
        write_comparison([fake_run(tmp_path / "a")], tmp_path / "c.html")


# ---- the commands ------------------------------------------------------------------------------------------
runner = CliRunner()


def test_report_command_writes_the_page_and_says_where(tmp_path):
    run = fake_run(tmp_path / "run")
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and (run / "report.html").is_file()
    result = runner.invoke(app, ["report", str(run), "--output", str(tmp_path / "elsewhere.html")])
    assert result.exit_code == 0 and (tmp_path / "elsewhere.html").is_file()


def test_compare_command_writes_compare_html_in_the_current_directory(tmp_path, monkeypatch):
    runs = [str(fake_run(tmp_path / name)) for name in ("a", "b")]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compare", *runs])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "compare.html").is_file()


@pytest.mark.parametrize("setup, message", [
    (lambda d: d, "not a run directory (no config.yaml)"),
    (lambda d: fake_run(d, metrics=[]), "no metrics"),
    (lambda d: d / "missing", "no such directory"),
])
def test_report_of_something_that_is_not_a_run_is_one_clear_line(tmp_path, setup, message):
    target = setup(tmp_path / "dir")
    if target.name == "dir":
        target.mkdir(exist_ok=True)
    result = runner.invoke(app, ["report", str(target)])
    output = " ".join(result.output.split())  # the terminal wraps a long path
    assert result.exit_code == 2 and output.startswith("error:") and message in output and "Traceback" not in output


def test_overrides_written_by_the_report_parse_back():
    config = {"rewards": ["accuracy", "format"], "model": "Qwen/Qwen2.5-0.5B", "lr": 1e-05, "dataset": "a b.jsonl",
              "name": "yes", "eval": {"items": 200}, "template": ""}
    words = shlex.split(reproduce("unknown", config).command)
    sets = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert parse_overrides(sets) == config
