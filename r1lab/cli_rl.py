"""The policy-gradient jobs of the `r1lab` command: `train {reinforce,trpo,ppo}` and `eval`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from r1lab.cli import (
    NoReport,
    Overwrite,
    Preset,
    PrintConfig,
    Quiet,
    RunDir,
    Sets,
    app,
    clear_errors,
    console,
    print_config,
    write_run_report,
)

ALGORITHMS = ("reinforce", "trpo", "ppo")
# the shipped preset of an env, as r1lab/configs/ALGORITHM-NAME.yaml
PRESET_NAMES = {"CartPole-v1": "cartpole", "Acrobot-v1": "acrobot", "Pendulum-v1": "pendulum", "r1lab/Maze-v0": "maze"}

Env = Annotated[str | None, typer.Option("--env", help="A registered Gymnasium id, e.g. CartPole-v1 or r1lab/Maze-v0, "
                                                        "or module:EnvId, which imports module first [default: CartPole-v1].")]
GymPackages = Annotated[list[str] | None, typer.Option("--gym-packages", help="Modules to import first, so that they "
                                                                             "register their envs (repeatable).")]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed [default: 0].")]
TotalSteps = Annotated[int | None, typer.Option("--total-steps", help="Environment steps to train for "
                                                                      "[default: the preset's, else 100000].")]
Resume = Annotated[Path | None, typer.Option("--resume", help="Continue the interrupted run in this directory.")]


def shipped_preset(algorithm: str, env_id: str) -> str | None:
    """The tuned preset for this algorithm and env (e.g. ppo-cartpole), when one ships."""
    name = PRESET_NAMES.get(env_id.rpartition(":")[2])
    if name is None:
        return None
    preset = f"{algorithm}-{name}"
    return preset if (resources.files("r1lab") / "configs" / f"{preset}.yaml").is_file() else None


@app.command()
@clear_errors
def train(
    algorithm: Annotated[str, typer.Argument(help="reinforce, trpo or ppo.")],
    env: Env = None, gym_packages: GymPackages = None, seed: Seed = None, total_steps: TotalSteps = None,
    run_dir: RunDir = None, preset: Preset = None, sets: Sets = None, resume: Resume = None,
    overwrite: Overwrite = False, quiet: Quiet = False, print_only: PrintConfig = False, no_report: NoReport = False,
):
    """Train REINFORCE, TRPO or PPO on any Gymnasium env (seed §3).

    The env's tuned preset (e.g. ppo-cartpole) applies when one ships; a --preset of yours is
    layered on top of it, and --set on top of both."""
    from r1lab.policy_gradient import CONFIGS, TRAINERS
    from r1lab.runs import ConfigError, build, default_run_dir, load_config, read_config_file

    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm '{algorithm}'; valid algorithms: {', '.join(ALGORITHMS)}")
    named = {"env_id": env, "seed": seed, "total_steps": total_steps, "gym_packages": gym_packages or None}
    if resume is not None:
        if preset is not None or sets or any(v is not None for v in named.values()):
            raise ConfigError("--resume continues a run with the config it started with; "
                              "drop --env, --gym-packages, --seed, --total-steps, --preset and --set")
        _check_job(resume, algorithm)
        config = build(CONFIGS[algorithm], read_config_file(resume), f"{resume}/config.yaml")
        directory = Path(resume)
    else:
        if gym_packages:  # a preset lookup may need the ids these packages register
            from r1lab.policy_gradient.rollout import import_env_packages

            import_env_packages(gym_packages)
        tuned = shipped_preset(algorithm, env or CONFIGS[algorithm]().env_id)
        presets = [p for p in (tuned, preset) if p is not None]
        if tuned is not None and not quiet and not print_only:
            layered = f", with {preset} on top" if preset is not None else ""
            console.print(f"preset {tuned}{layered} (override any key with --set key=value)", highlight=False)
        config = load_config(CONFIGS[algorithm], presets or None, overrides=named, sets=sets)
        directory = Path(run_dir or default_run_dir(algorithm))
    if print_only:
        return print_config(config)
    summary = TRAINERS[algorithm](config, directory, resume=resume is not None, overwrite=overwrite, quiet=quiet)
    console.print(
        f"{algorithm} on {config.env_id}: eval return {_number(summary['eval_return_mean'])} "
        f"± {_number(summary['eval_return_std'])} over {summary['eval_episodes']} episodes; "
        f"{summary['env_steps']:,} steps in {summary['wall_seconds']:.1f} s "
        f"({summary['steps_per_second']:,.0f} steps/s); run in {directory}", highlight=False, soft_wrap=True)
    write_run_report(directory, no_report)


@app.command("eval")
@clear_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of `r1lab train`.")],
    episodes: Annotated[int, typer.Option("--episodes", "-n", help="Episodes to average over.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first episode's reset.")] = 0,
    stochastic: Annotated[bool, typer.Option("--stochastic", help="Sample actions instead of the mode.")] = False,
    render: Annotated[str | None, typer.Option("--render", help="ansi: print the first episode's frames; "
                                                                "rgb: save them as PNGs in RUN_DIR/eval-frames.")] = None,
):
    """Mean and std of a trained policy's return over N episodes (from the run's newest checkpoint)."""
    from r1lab.policy_gradient import evaluate_policy, load_run
    from r1lab.runs import ConfigError, write_json_atomic

    if episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {episodes}")
    algorithm, config, policy, obs_stats = load_run(run_dir)
    result = evaluate_policy(policy, config.env_id, episodes, env_kwargs=config.env_kwargs, seed=seed,
                             deterministic=not stochastic, obs_stats=obs_stats, render=render)
    if render == "ansi":
        for frame in result.frames:
            console.print(frame, markup=False, highlight=False)
    elif render == "rgb":
        _save_frames(result.frames, run_dir / "eval-frames")
    write_json_atomic(run_dir / "eval.json", {
        "algorithm": algorithm, "env_id": config.env_id, "episodes": episodes, "seed": seed,
        "deterministic": not stochastic, "return_mean": result.mean, "return_std": result.std,
        "returns": result.returns, "lengths": result.lengths})
    console.print(f"{algorithm} on {config.env_id}: return {result.mean:.2f} ± {result.std:.2f} over {episodes} "
                  f"episodes ({'sampled' if stochastic else 'deterministic'} actions; mean length "
                  f"{sum(result.lengths) / episodes:.1f})", highlight=False, soft_wrap=True)


def _check_job(run_dir: Path, algorithm: str) -> None:
    import yaml

    from r1lab.runs import ConfigError

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    job = (yaml.safe_load(path.read_text()) or {}).get("job")
    if job != algorithm:
        raise ConfigError(f"{run_dir} is a '{job}' run; resume it with `r1lab train {job} --resume {run_dir}`")


def _save_frames(frames: list, directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        plt.imsave(directory / f"frame-{i:04d}.png", frame)
    console.print(f"wrote {len(frames)} frames to {directory}")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
