"""`r1lab maze`: the job's summary, run directory, printed report and its one-line errors."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from r1lab.cli import app

runner = CliRunner()


def maze(*args):
    return runner.invoke(app, ["maze", *args])


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_default_run_finds_the_seeds_optimal_path_and_writes_the_run_dir(tmp_path):
    result = maze("--run-dir", str(tmp_path), "--set", "tensorboard=false")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["greedy_path"] in ([1, 4, 5, 8, 9], [1, 2, 5, 8, 9], [1, 2, 5, 6, 9], [1, 4, 5, 6, 9])
    assert summary["path_length"] == summary["optimal_length"] == 4
    assert summary["reached_goal"] and summary["optimal"]
    assert summary["episodes"] == 200 and summary["updates"] > 0
    assert summary["wall_seconds"] > 0 and summary["updates_per_second"] > 0  # speed lives in benchmarks/tabular.py
    assert np.load(tmp_path / "q_table.npy").shape == (9, 4)
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 200 and {"episode_return", "episode_length", "epsilon"} <= set(metrics[0])
    assert metrics[0]["epsilon"] == 1.0 and metrics[-1]["epsilon"] == pytest.approx(0.05)
    for shown in ("Q table", "s1 (S)", "greedy path: S1 → ", "optimal: yes, 4 moves = value iteration's 4"):
        assert shown in flat(result.output)


@pytest.mark.parametrize("seed", range(20))
def test_seed_maze_is_solved_optimally_for_any_seed(tmp_path, seed):
    result = maze("--run-dir", str(tmp_path), "--seed", str(seed), "--quiet", "--set", "tensorboard=false")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["optimal"] and summary["path_length"] == 4


def test_random_maze_and_named_options_reach_the_config(tmp_path):
    result = maze("--size", "12", "--maze-seed", "3", "--episodes", "400", "--alpha", "0.8", "--gamma", "0.95",
                  "--epsilon", "0.5", "--run-dir", str(tmp_path), "--quiet", "--set", "tensorboard=false")
    assert result.exit_code == 0, result.output
    config = (tmp_path / "config.yaml").read_text()
    for line in ("size: 12", "maze_seed: 3", "episodes: 400", "alpha: 0.8", "gamma: 0.95", "start: 0.5"):
        assert line in config
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["optimal"] and summary["greedy_path"][0] == 1 and summary["greedy_path"][-1] == 144


def test_layout_file_and_preset(tmp_path):
    layout = tmp_path / "maze.txt"
    layout.write_text("S...\n.##.\n...E\n")
    result = maze("--layout", str(layout), "--preset", "maze", "--run-dir", str(tmp_path / "run"),
                  "--set", "epsilon.kind=exponential", "--set", "tensorboard=false")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["optimal"] and summary["optimal_length"] == 5 and summary["maze"] == str(layout)


def test_epsilon_zero_from_a_zero_table_never_reaches_the_end(tmp_path):
    result = maze("--epsilon", "0", "--set", "q_init=0", "--set", "tie_break=first", "--run-dir", str(tmp_path),
                  "--set", "tensorboard=false")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert not summary["reached_goal"] and not summary["optimal"] and summary["first_goal_episode"] is None
    assert summary["greedy_path"][:5] == [1, 4, 1, 4, 1]
    assert "never reaches the end" in flat(result.output)


@pytest.mark.parametrize("picture, message", [
    ("..#\n...\n#.E\n", "has no start"),
    ("S.#\n...\n#..\n", "has no end"),
    ("S.#\n###\n#.E\n", "cannot be reached from the start"),
    ("S.#\n..\n#.E\n", "ragged rows"),
])
def test_malformed_layout_file_is_one_clear_error_naming_the_file(tmp_path, picture, message):
    layout = tmp_path / "bad.txt"
    layout.write_text(picture)
    result = maze("--layout", str(layout), "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert result.output.count("error:") == 1
    assert f"{layout}: " in result.output.replace("\n", "") and message in flat(result.output)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--set", "colour=blue"], "unknown key 'colour'; valid keys: layout, size"),
    (["--alpha", "2"], "'alpha' must be in (0, 1], got 2.0"),
    (["--gamma", "1.5"], "'gamma' must be in [0, 1]"),
    (["--episodes", "0"], "'episodes' must be >= 1"),
    (["--epsilon", "-0.1"], "'epsilon.start' must be in [0, 1]"),
    (["--size", "1"], "'size' must be >= 2"),
    (["--layout", "missing.txt"], "missing.txt: no such maze layout file"),
])
def test_invalid_values_are_one_clear_error(tmp_path, args, message):
    result = maze(*args, "--run-dir", str(tmp_path))
    assert result.exit_code == 2
    assert message in flat(result.output)
    assert not (tmp_path / "metrics.jsonl").exists()
