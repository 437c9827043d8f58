"""`r1lab train {reinforce,trpo,ppo}` and `r1lab eval`: presets, the run directory, resume, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

import r1lab.cli_rl  # noqa: F401  (registers train and eval on the shared app)
from r1lab.cli import app

runner = CliRunner()


def r1lab(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


def test_train_uses_the_envs_preset_and_writes_the_run_dir(tmp_path):
    result = r1lab("train", "ppo", "--env", "r1lab/Maze-v0", "--seed", "3", "--total-steps", "2048",
                   "--run-dir", tmp_path, "--set", "tensorboard=false", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["env_steps"] == 2048 and summary["eval_return_mean"] == 1.0 and summary["seed"] == 3
    config = (tmp_path / "config.yaml").read_text()
    assert "env_id: r1lab/Maze-v0" in config and "ent_coef: 0.01" in config  # from ppo-maze.yaml
    assert "eval return 1.0 ± 0.0 over 10 episodes" in flat(result.output)
    assert (tmp_path / "metrics.jsonl").exists() and list((tmp_path / "checkpoints").glob("step-*"))


def test_train_shows_a_progress_bar_with_the_running_return(tmp_path):
    result = r1lab("train", "reinforce", "--env", "r1lab/Maze-v0", "--total-steps", "1024", "--run-dir", tmp_path,
                   "--set", "tensorboard=false")
    assert result.exit_code == 0, result.output
    assert "preset reinforce-maze" in result.output
    assert "reinforce r1lab/Maze-v0" in result.output and "return" in result.output


def test_eval_reports_mean_and_std_and_renders_the_maze(tmp_path):
    assert r1lab("train", "trpo", "--env", "r1lab/Maze-v0", "--run-dir", tmp_path, "--set", "tensorboard=false",
                 "--quiet").exit_code == 0
    result = r1lab("eval", tmp_path, "--episodes", "4", "--render", "ansi")
    assert result.exit_code == 0, result.output
    assert "trpo on r1lab/Maze-v0: return 1.00 ± 0.00 over 4 episodes" in flat(result.output)
    assert result.output.count("agent at") == 5  # the start and four moves of the first episode
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["returns"] == [1.0] * 4 and report["lengths"] == [4] * 4
    stochastic = r1lab("eval", tmp_path, "--episodes", "3", "--stochastic")
    assert stochastic.exit_code == 0 and "sampled actions" in flat(stochastic.output)


def test_resume_continues_an_interrupted_run_through_the_cli(tmp_path):
    args = ["--env", "CartPole-v1", "--run-dir", tmp_path, "--set", "tensorboard=false", "--quiet"]
    first = r1lab("train", "ppo", "--total-steps", "1024", *args, "--set", "checkpoint_every=1")
    assert first.exit_code == 0, first.output
    again = r1lab("train", "ppo", "--resume", tmp_path)
    assert again.exit_code == 0, again.output  # a finished run resumes to its end at once
    assert json.loads((tmp_path / "summary.json").read_text())["resumed"] is True
    wrong = r1lab("train", "trpo", "--resume", tmp_path)
    assert wrong.exit_code == 2 and "is a 'ppo' run" in flat(wrong.output)
    mixed = r1lab("train", "ppo", "--resume", tmp_path, "--seed", "2")
    assert mixed.exit_code == 2 and "drop --env" in flat(mixed.output)


@pytest.mark.parametrize("args,message", [
    (["train", "ppo", "--env", "CartPol-v1"], "error: command line: unknown environment 'CartPol-v1'; did you mean "
                                              "CartPole-v1"),
    (["train", "ppo", "--set", "lrr=0.1"], "unknown key 'lrr'; valid keys: env_id,"),
    (["train", "trpo", "--set", "max_kl=-1"], "'max_kl' must be > 0, got -1.0"),
    (["train", "dqn"], "unknown algorithm 'dqn'; valid algorithms: reinforce, trpo, ppo"),
    (["train", "trpo", "--set", "shared_network=true"], "'shared_network' must be false for TRPO"),
    (["train", "ppo", "--env", "r1lab/Maze-v0", "--set", "env_kwargs.colour=red"], "env_kwargs for 'r1lab/Maze-v0'"),
    (["eval", "."], "not a policy-gradient run"),
])
def test_bad_input_stops_with_one_clear_line(tmp_path, args, message):
    result = r1lab(*args, "--run-dir", tmp_path) if args[0] == "train" else r1lab(*args)
    assert result.exit_code == 2, result.output
    assert message in flat(result.output)
    assert flat(result.output).count("error:") == 1 and "Traceback" not in result.output


def test_eval_cannot_render_a_mode_the_env_lacks(tmp_path):
    assert r1lab("train", "ppo", "--env", "CartPole-v1", "--total-steps", "256", "--run-dir", tmp_path,
                 "--set", "tensorboard=false", "--set", "eval_episodes=1", "--quiet").exit_code == 0
    result = r1lab("eval", tmp_path, "--render", "ansi")
    assert result.exit_code == 2
    assert "'CartPole-v1' renders as human, rgb_array; it cannot render 'ansi'" in flat(result.output)


def test_rgb_render_without_its_dependency_is_one_clear_line(tmp_path):
    assert r1lab("train", "trpo", "--env", "CartPole-v1", "--total-steps", "256", "--run-dir", tmp_path,
                 "--set", "tensorboard=false", "--set", "eval_episodes=1", "--set", "steps_per_env=32",
                 "--quiet").exit_code == 0
    result = r1lab("eval", tmp_path, "--render", "rgb", "--episodes", "1")
    try:
        import pygame  # noqa: F401
    except ImportError:
        assert result.exit_code == 2 and "rendering 'CartPole-v1'" in flat(result.output)
        assert "pygame is not installed" in flat(result.output)
    else:  # with pygame, the first episode's frames become PNGs
        assert result.exit_code == 0, result.output
        assert list((tmp_path / "eval-frames").glob("frame-*.png"))
