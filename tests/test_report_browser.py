"""The report in a real browser: headless Chromium renders a short seeded R1-Zero run's page with no
console errors, its completions table filters and sorts as the hints on the page say, and markup in
a completion is shown, never run.

Skipped, with the reason, where playwright or Chromium is missing; `.ci/run` installs Chromium.
"""

import json

import pytest

pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright: pip install -e '.[dev]'")

from r1lab.pipelines.r1_zero import R1ZeroConfig, run_grpo_job  # noqa: E402
from r1lab.report import write_report  # noqa: E402
from r1lab.report.browser import find_chromium, open_report  # noqa: E402

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine (apt-get install "
                                "chromium, or set R1LAB_CHROMIUM); .ci/run installs it")

TABLE = "#completions-table"


@pytest.fixture(scope="module")
def r1_zero_report(tmp_path_factory):
    """A 2-step R1-Zero run on the bundled tiny model (with this seed, some sampled completions earn rewards)."""
    directory = tmp_path_factory.mktemp("r1-zero")
    config = R1ZeroConfig(task="arithmetic-easy", steps=2, group_size=4, prompts_per_step=4, max_new_tokens=48,
                          eval_items=8, eval_k=0, eval_every=0, log_samples_every=1, checkpoint_every=100,
                          save_model=False, seed=1)
    run_grpo_job(config, directory, quiet=True)
    samples = [json.loads(line) for line in (directory / "samples.jsonl").read_text().splitlines()]
    return write_report(directory), samples


def visible(page, column: int) -> list[str]:
    """The texts of one column in the rows the filters leave visible, top to bottom."""
    return page.eval_on_selector_all(f"{TABLE} tbody tr", f"""rows => rows.filter(r => !r.hidden)
        .map(r => r.cells[{column}].getAttribute("data-value") ?? r.cells[{column}].textContent)""")


def column_index(page, label: str) -> int:
    return page.eval_on_selector_all(f"{TABLE} thead tr:first-child th",
                                     f"cells => cells.findIndex(c => c.textContent.trim() === {json.dumps(label)})")


def test_the_report_renders_without_console_errors_and_filters_and_sorts(r1_zero_report, tmp_path):
    path, samples = r1_zero_report
    with open_report(path) as (page, errors):
        assert "r1lab r1-zero" in page.inner_text("h1")
        assert page.locator("figure.curve svg").count() >= 5
        assert page.locator("table.before-after tbody tr").count() >= 3
        assert page.locator(f"{TABLE} .think").count() == sum("<think>" in row["completion"] for row in samples)
        step, reward = column_index(page, "step"), column_index(page, "reward")
        assert len(visible(page, step)) == len(samples)

        filters = page.locator(f"{TABLE} tr.filters input")
        filters.nth(step).fill("2")
        assert len(visible(page, step)) == sum(row["step"] == 2 for row in samples)
        filters.nth(reward).fill(">0")
        assert len(visible(page, step)) == sum(row["step"] == 2 and row["reward"] > 0 for row in samples)
        assert page.inner_text(f'.shown[data-for="{TABLE[1:]}"]').startswith(
            f"{len(visible(page, step))} of {len(samples)} rows")
        filters.nth(step).fill("")
        filters.nth(reward).fill("0..0.5, 2")  # a range or an exact value
        assert len(visible(page, step)) == sum(0 <= row["reward"] <= 0.5 or row["reward"] == 2 for row in samples)
        filters.nth(reward).fill("more than one")
        assert "invalid" in filters.nth(reward).get_attribute("class")
        assert len(visible(page, step)) == len(samples)  # a filter that does not parse filters nothing
        filters.nth(reward).fill("")

        header = page.locator(f"{TABLE} thead tr:first-child th").nth(reward)
        header.locator("button").click()
        ascending = [float(v) for v in visible(page, reward)]
        assert ascending == sorted(row["reward"] for row in samples)
        assert header.get_attribute("aria-sort") == "ascending"
        header.locator("button").click()
        assert [float(v) for v in visible(page, reward)] == sorted(ascending, reverse=True)

        screenshot = tmp_path / "report.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert errors == []


def hand_made_run(directory, samples):
    directory.mkdir()
    (directory / "config.yaml").write_text("job: grpo\nconfig: {seed: 0}\n")
    (directory / "metrics.jsonl").write_text('{"step": 1, "reward": 0}\n{"step": 2, "reward": 1}\n')
    (directory / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in samples))
    return write_report(directory)


def test_each_column_filters_by_its_own_rule(tmp_path):
    """Twelve rows: steps 1-3, accuracy and format rewards of 0 or 1, their sum, advantages of -1..+1."""
    samples = [{"step": 1 + i // 4, "question": f"{i}+1?", "completion": "<think>hm</think> 1" if i % 2 else "1",
                "rewards": {"accuracy": float(i % 3 == 0), "format": float(i % 2)}, "advantage": (i % 5 - 2) / 2,
                "reward": float(i % 3 == 0) + float(i % 2)} for i in range(12)]
    with open_report(hand_made_run(tmp_path / "run", samples)) as (page, errors):
        filters = page.locator(f"{TABLE} tr.filters input")
        step, accuracy, reward = (column_index(page, name) for name in ("step", "accuracy", "reward"))
        completion, advantage = column_index(page, "completion"), column_index(page, "advantage")
        for column, text, expected in [
            (step, "2", [r for r in samples if r["step"] == 2]),
            (step, "1, 3", [r for r in samples if r["step"] in (1, 3)]),
            (accuracy, "1", [r for r in samples if r["rewards"]["accuracy"] == 1]),
            (reward, ">=1", [r for r in samples if r["reward"] >= 1]),
            (advantage, "-0.5..0.5", [r for r in samples if -0.5 <= r["advantage"] <= 0.5]),
            (completion, "THINK", [r for r in samples if "think" in r["completion"]]),  # any case
        ]:
            filters.nth(column).fill(text)
            assert len(visible(page, step)) == len(expected), (text, expected)
            filters.nth(column).fill("")
        filters.nth(step).fill("3")
        filters.nth(reward).fill(">0")  # filters add up
        assert len(visible(page, step)) == sum(r["step"] == 3 and r["reward"] > 0 for r in samples)
        filters.nth(step).fill("")
        filters.nth(reward).fill("")
        page.locator(f"{TABLE} thead tr:first-child th").nth(advantage).locator("button").click()
        page.locator(f"{TABLE} thead tr:first-child th").nth(advantage).locator("button").click()
        assert [float(v) for v in visible(page, advantage)] == sorted((r["advantage"] for r in samples), reverse=True)
        assert errors == []


def test_markup_in_a_completion_is_shown_not_run(tmp_path):
    attack = '<script>window.ran = 1</script><img src=x onerror="window.ran = 2">'
    page_path = hand_made_run(tmp_path / "run", [{"step": 1, "question": attack, "reward": 0.0,
                                                  "completion": f"<think>{attack}</think>{attack}"}])
    with open_report(page_path) as (page, errors):
        assert page.evaluate("window.ran") is None
        assert page.locator(f"{TABLE} img").count() == 0
        assert attack in page.inner_text(f"{TABLE} td.completion .think")
        assert errors == []
