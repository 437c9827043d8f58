"""A new user's first hour: runs that survive Ctrl-C and SIGTERM, one-line errors, your own envs from
the command line, and the small things (version, defaults in help, --print-config)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from typer.testing import CliRunner

from r1lab.cli import app
from r1lab.llm.grpo import train_grpo
from r1lab.llm.loading import load_model
from r1lab.policy_gradient import TRAINERS
from r1lab.policy_gradient import job as job_module
from r1lab.runs import ConfigError, Run, RunInterrupted, load_config, read_metrics, stop_on_signals
from r1lab.tasks import get_task

RUNNER = CliRunner()


def r1lab(*args, **kwargs):
    result = RUNNER.invoke(app, [str(a) for a in args], **kwargs)
    return result, " ".join(result.output.split())


def length_scorer(prompts, completions, fields):
    return [float(len(text) % 7) for text in completions], {}


# ---------------------------------------------------------------- interruption and resume


def test_sigterm_mid_run_checkpoints_and_resume_ends_where_an_uninterrupted_ppo_run_ends(tmp_path, monkeypatch):
    from r1lab.policy_gradient import CONFIGS

    cfg = load_config(CONFIGS["ppo"], "ppo-cartpole", sets=["total_steps=2048", "steps_per_env=32",
                                                             "tensorboard=false", "eval_episodes=3"])
    straight = TRAINERS["ppo"](cfg, tmp_path / "straight", quiet=True)
    original = job_module.Job.record

    def terminated_during_iteration_three(self, iteration, *args, **kwargs):
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a cluster does before preempting the job
        original(self, iteration, *args, **kwargs)

    monkeypatch.setattr(job_module.Job, "record", terminated_during_iteration_three)
    with stop_on_signals(), pytest.raises(RunInterrupted) as stop:
        TRAINERS["ppo"](cfg, tmp_path / "resumed", quiet=True)
    assert stop.value.signum == signal.SIGTERM and stop.value.exit_code == 143
    assert stop.value.step == 3 * 256 and (tmp_path / "resumed" / "checkpoints" / f"step-{768:09d}").is_dir()
    monkeypatch.setattr(job_module.Job, "record", original)
    resumed = TRAINERS["ppo"](cfg, tmp_path / "resumed", resume=True, quiet=True)
    assert resumed["exact_resume"] and resumed["eval_return_mean"] == straight["eval_return_mean"]
    keys = ("step", "episode_return", "policy_loss", "value_loss")
    strip = lambda records: [{k: r.get(k) for k in keys} for r in records]  # noqa: E731
    assert strip(read_metrics(tmp_path / "resumed")) == strip(read_metrics(tmp_path / "straight"))


def test_sigint_mid_grpo_run_then_resume_gives_the_uninterrupted_weights_and_counts_the_whole_time(
        small_config, qwen2_dir, tmp_path):
    config = small_config(qwen2_dir, steps=4, save_model=True)
    items = get_task("arithmetic").items(20, "train")
    train_grpo(config, tmp_path / "straight", items, length_scorer, quiet=True)

    calls = []

    def interrupted_scorer(prompts, completions, fields):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during step 2
            time.sleep(0.3)
        return length_scorer(prompts, completions, fields)

    with stop_on_signals(), pytest.raises(RunInterrupted) as stop:
        train_grpo(config, tmp_path / "resumed", items, interrupted_scorer, quiet=True)
    assert stop.value.step == 2 and stop.value.exit_code == 130
    summary = train_grpo(config, tmp_path / "resumed", items, length_scorer, quiet=True, resume=True)
    straight = load_model(tmp_path / "straight" / "model").policy.state_dict()
    resumed = load_model(tmp_path / "resumed" / "model").policy.state_dict()
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)
    assert [r["step"] for r in read_metrics(tmp_path / "resumed")] == [1, 2, 3, 4]
    assert summary["wall_seconds"] >= 0.3  # the interrupted segment (with its sleep) counts too


def test_a_second_ctrl_c_stops_at_once():
    with stop_on_signals(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)


def test_tensorboard_gets_no_duplicate_steps_after_a_resume(small_config, qwen2_dir, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = small_config(qwen2_dir, steps=4, checkpoint_every=2)
    items = get_task("arithmetic").items(20, "train")
    original_log = Run.log

    def crash_after_step_three(self, step, metrics):
        original_log(self, step, metrics)
        if step == 3:
            self.close()
            raise RuntimeError("killed")  # logged step 3 after the step-2 checkpoint, then died

    monkeypatch.setattr(Run, "log", crash_after_step_three)
    with pytest.raises(RuntimeError):
        train_grpo(config, tmp_path, items, length_scorer, quiet=True)
    monkeypatch.setattr(Run, "log", original_log)
    train_grpo(config, tmp_path, items, length_scorer, quiet=True, resume=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("reward")]
    assert steps == [1, 2, 3, 4]


def test_a_run_dir_with_metrics_but_no_checkpoint_starts_again_in_place(tmp_path):
    run = Run(tmp_path, "grpo", {"a": 1})
    run.log(1, {"loss": 1.0})
    run.close()
    again = Run(tmp_path, "grpo", {"a": 2})  # no checkpoint: nothing to resume, so start again
    again.close()
    assert read_metrics(tmp_path) == []
    run = Run(tmp_path, "grpo", {"a": 1})
    run.log(1, {"loss": 1.0})
    run.save_checkpoint(1, {"x": 1})
    run.close()
    with pytest.raises(ConfigError, match="--resume"):
        Run(tmp_path, "grpo", {"a": 2})
    Run(tmp_path, "grpo", {"a": 3}, overwrite=True).close()
    assert not (tmp_path / "checkpoints").exists()


def test_a_time_based_interval_checkpoints_between_step_based_ones(tmp_path):
    class Config:
        checkpoint_every, checkpoint_minutes = 1000, 0.001  # 60 ms
    run = Run(tmp_path, "x", {"a": 1})
    run.checkpoint_every, run.checkpoint_seconds = Config.checkpoint_every, 60 * Config.checkpoint_minutes
    assert not run.checkpoint_due(1)
    time.sleep(0.08)
    assert run.checkpoint_due(2)
    run.save_checkpoint(2, {})
    assert not run.checkpoint_due(3) and run.checkpoint_due(1000) and run.checkpoint_due(3, last=True)
    run.close()


def test_the_cli_says_how_to_resume_and_exits_128_plus_the_signal(tmp_path):
    command = [sys.executable, "-m", "r1lab", "train", "ppo", "--env", "CartPole-v1", "--total-steps", "400000",
               "--run-dir", str(tmp_path / "run"), "-q", "--set", "tensorboard=false"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 2):
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert f"continue with: r1lab train ppo --resume {tmp_path / 'run'}" in " ".join(output.split())
    assert list((tmp_path / "run" / "checkpoints").glob("step-*"))


def test_two_default_named_runs_started_at_once_both_succeed(tmp_path):
    command = [sys.executable, "-m", "r1lab", "maze", "-q", "--set", "tensorboard=false"]
    processes = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                 for _ in range(2)]
    codes = [p.wait(timeout=120) for p in processes]
    assert codes == [0, 0], [p.stdout.read() for p in processes]
    assert len(list((tmp_path / "runs").iterdir())) == 2


# ---------------------------------------------------------------- errors that read as one line


def test_square_brackets_in_an_error_are_kept(tmp_path):
    result, output = r1lab("sft", "--data", tmp_path / "[bold]x.txt", "--run-dir", tmp_path / "r")
    assert result.exit_code == 2 and "[bold]x.txt: no such SFT data file" in output


@pytest.mark.parametrize("args, message", [
    (["train", "ppo", "--env", "LunarLander-v3"], 'pip install "gymnasium[box2d]"'),
    (["generate", "--prompt", "hi", "--num", "0"], "--num must be >= 1"),
    (["eval-llm", "--items", "0"], "--items must be >= 1"),
    (["eval-llm", "--task", "nonsense"], "unknown task 'nonsense'"),
    (["sft", "--data", "x.jsonl", "--set", "lora.rank=8"], "needs peft"),
])
def test_each_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, monkeypatch, args, message):
    if "lora.rank=8" in args:
        (tmp_path / "x.jsonl").write_text('{"prompt": "a", "completion": "b"}\n' * 4)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setitem(sys.modules, "peft", None)  # as if the lora extra were not installed
    result, output = r1lab(*args, "--run-dir", tmp_path / "run")
    assert result.exit_code != 0 and message in output, output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_eval_llm_on_requests_reports_the_tasks_own_check(tmp_path):
    result, output = r1lab("eval-llm", "--task", "chat", "--items", "4", "--k", "0", "--max-new-tokens", "8",
                           "--run-dir", tmp_path)
    assert result.exit_code == 0 and "helpful_rate" in output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["template"] == "chat" and 0 <= summary["helpful_rate"] <= 1


def test_a_job_that_cannot_start_leaves_no_run_dir(tmp_path):
    result, _ = r1lab("sft", "--data", tmp_path / "none.jsonl", "--run-dir", tmp_path / "run")
    assert result.exit_code == 2 and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- your own environments


def test_gymnasiums_module_env_id_form_trains(tmp_path):
    result, output = r1lab("train", "ppo", "--env", "r1lab.envs:r1lab/Maze-v0", "--total-steps", "512",
                           "--run-dir", tmp_path, "-q", "--set", "tensorboard=false", "--set", "eval_episodes=1")
    assert result.exit_code == 0, output
    assert "preset ppo-maze" not in output  # quiet
    assert json.loads((tmp_path / "summary.json").read_text())["env_id"] == "r1lab.envs:r1lab/Maze-v0"


def test_gym_packages_are_imported_before_the_env_is_made(tmp_path, monkeypatch):
    (tmp_path / "my_envs.py").write_text(textwrap.dedent("""
        import gymnasium as gym
        gym.register("MyCartPole-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv", max_episode_steps=50)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    result, output = r1lab("train", "ppo", "--gym-packages", "my_envs", "--env", "MyCartPole-v0", "--total-steps", "512",
                           "--run-dir", tmp_path / "run", "-q", "--set", "tensorboard=false",
                           "--set", "eval_episodes=1")
    assert result.exit_code == 0, output
    missing, output = r1lab("train", "ppo", "--gym-packages", "no_such_package", "--run-dir", tmp_path / "x")
    assert missing.exit_code == 2 and "gym package 'no_such_package' could not be imported" in output


def test_a_trained_policy_loads_and_predicts_like_sb3(tmp_path):
    import gymnasium as gym
    import numpy as np

    import r1lab as package

    r1lab("train", "ppo", "--env", "CartPole-v1", "--total-steps", "512", "--run-dir", tmp_path,
                            "-q", "--set", "tensorboard=false", "--set", "eval_episodes=1")
    policy = package.load_policy(tmp_path)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs)
    assert state is None and env.action_space.contains(int(action))
    actions, _ = policy.predict(np.stack([obs, obs]))
    assert actions.shape == (2,) and actions[0] == actions[1] == action


# ---------------------------------------------------------------- the small things


def test_version_help_defaults_and_print_config(tmp_path):
    from r1lab import __version__

    assert r1lab("--version")[1] == f"r1lab {__version__}"
    _, help_text = r1lab("sft", "--help")
    assert "Peak learning rate" in help_text and "0.0005" in help_text
    _, help_text = r1lab("eval-llm", "--help")
    assert "countdown" in help_text
    result, printed = r1lab("r1-zero", "--print-config", "--set", "lr=2e-4")
    assert result.exit_code == 0 and "lr: 0.0002" in printed and "steps: 60" in printed
    assert not (tmp_path / "runs").exists()


def test_exponent_notation_is_an_integer_where_an_integer_is_wanted():
    from r1lab.policy_gradient import CONFIGS

    assert load_config(CONFIGS["ppo"], sets=["total_steps=1e5"]).total_steps == 100_000
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(CONFIGS["ppo"], sets=["total_steps=1.5e3.2"])


def test_a_user_preset_is_layered_on_the_envs_tuned_preset(tmp_path):
    (tmp_path / "mine.yaml").write_text("lr: 0.001\n")
    result, printed = r1lab("train", "ppo", "--env", "CartPole-v1", "--preset", tmp_path / "mine.yaml", "--print-config")
    assert result.exit_code == 0
    tuned = load_config(__import__("r1lab.policy_gradient", fromlist=["CONFIGS"]).CONFIGS["ppo"], "ppo-cartpole")
    assert "lr: 0.001" in printed and f"num_envs: {tuned.num_envs}" in printed and f"gae_lambda: {tuned.gae_lambda}" in printed


def test_a_reward_function_of_yours_is_called_with_trls_signature(qwen2_dir, tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent("""
        import json
        def shorter(prompts, completions, answer, **fields):
            with open("calls.jsonl", "a") as log:
                log.write(json.dumps({"prompts": len(prompts), "completions": len(completions),
                                      "answer": answer, "fields": sorted(fields)}) + "\\n")
            return [1.0 / (1 + len(c)) for c in completions]
    """))
    monkeypatch.chdir(tmp_path)
    result, output = r1lab("grpo", "--model", qwen2_dir, "--reward", "format", "--reward", "my_rewards:shorter=0.5",
                           "--steps", "1", "--group-size", "2", "--prompts-per-step", "2", "--max-new-tokens", "4",
                           "--run-dir", tmp_path / "run", "-q", "--set", "eval_items=2", "--set", "eval_k=0",
                           "--set", "log_samples_every=1")
    assert result.exit_code == 0, output
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert calls[0]["prompts"] == calls[0]["completions"] == 4 and len(calls[0]["answer"]) == 4
    assert {"a", "b", "op", "digits"} <= set(calls[0]["fields"])
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "my_rewards:shorter" in config and "0.5" in config
    sample = json.loads((tmp_path / "run" / "samples.jsonl").read_text().splitlines()[0])
    assert set(sample["rewards"]) == {"format", "my_rewards:shorter"}


def test_every_job_ends_with_its_report_unless_told_not_to(tmp_path):
    result, output = r1lab("maze", "-q", "--run-dir", tmp_path / "with", "--set", "tensorboard=false")
    assert result.exit_code == 0 and (tmp_path / "with" / "report.html").is_file() and "report:" in output
    result, _ = r1lab("maze", "-q", "--run-dir", tmp_path / "without", "--no-report", "--set", "tensorboard=false")
    assert result.exit_code == 0 and not (tmp_path / "without" / "report.html").exists()
