"""r1lab's PPO against Stable-Baselines3's PPO on CartPole-v1, same hyperparameters; prints JSON.

Stable-Baselines3 is never a dependency of r1lab; this script runs in an environment of its own:

    python3 -m venv .bench-venv-sb3
    .bench-venv-sb3/bin/pip install torch==2.13.0
    .bench-venv-sb3/bin/pip install stable-baselines3 -e .
    .bench-venv-sb3/bin/python benchmarks/ppo_vs_sb3.py --seeds 0 1 2

Both run rl-baselines3-zoo's CartPole-v1 settings (r1lab's preset ppo-cartpole): 8 envs, n_steps
32, batch 256, 20 epochs, gamma 0.98, GAE lambda 0.8, learning rate 1e-3 and clip range 0.2 both
linearly annealed, no entropy bonus, value coefficient 0.5, gradient norm 0.5, Adam eps 1e-5, two
separate 64x64 tanh MLPs, 100k steps, each environment a Python CartPole in a synchronous vector
env (SB3's DummyVecEnv, Gymnasium's SyncVectorEnv). Each run is a fresh subprocess with one torch
thread; the two libraries alternate (who goes first alternates too), so a busy machine slows both
alike. Timed: the training loop alone (SB3's learn(); r1lab's loop from the first rollout to the
last checkpoint), and the process's construction before it. Return: the deterministic policy over
20 evaluation episodes after training. Also reported: each side's split of the loop between
collecting rollouts and training, and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

STEPS = 100_000
EVAL_EPISODES = 20


def worker_r1lab(seed: int, steps: int) -> dict:
    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    from r1lab.policy_gradient import PPOConfig, train_ppo
    from r1lab.runs import load_config

    config = load_config(PPOConfig, "ppo-cartpole", sets=[f"seed={seed}", f"total_steps={steps}", "tensorboard=false",
                                                           f"eval_episodes={EVAL_EPISODES}", "checkpoint_every=1000000"])
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train_ppo(config, run_dir, quiet=True)
    total = time.perf_counter() - started - summary["eval_seconds"]
    phases = summary["seconds_by_phase"]
    return {"library": "r1lab", "seed": seed, "env_steps": summary["env_steps"],
            "train_seconds": summary["wall_seconds"], "steps_per_second": summary["env_steps"] / summary["wall_seconds"],
            "process_seconds_without_eval": total, "eval_return_mean": summary["eval_return_mean"],
            "eval_return_std": summary["eval_return_std"],
            "collect_seconds": phases["collect"], "train_update_seconds": phases["estimate"] + phases["improve"],
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def worker_sb3(seed: int, steps: int) -> dict:
    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
                learning_rate=lambda remaining: 1e-3 * remaining, clip_range=lambda remaining: 0.2 * remaining,
                ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, seed=seed, device="cpu", verbose=0)
    timers = {"collect": 0.0, "train": 0.0}
    for name, method in (("collect", "collect_rollouts"), ("train", "train")):
        original = getattr(model, method)

        def timed(*args, _original=original, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                timers[_name] += time.perf_counter() - t0

        setattr(model, method, timed)
    learn_started = time.perf_counter()
    model.learn(total_timesteps=steps)
    train_seconds = time.perf_counter() - learn_started
    total = time.perf_counter() - started
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=seed + 10_000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True)
    return {"library": "stable-baselines3", "seed": seed, "env_steps": model.num_timesteps,
            "train_seconds": train_seconds, "steps_per_second": model.num_timesteps / train_seconds,
            "process_seconds_without_eval": total, "eval_return_mean": float(mean), "eval_return_std": float(std),
            "collect_seconds": timers["collect"], "train_update_seconds": timers["train"],
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_worker(library: str, seed: int, steps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", library, "--seed", str(seed), "--steps", str(steps)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    keys = ("train_seconds", "steps_per_second", "process_seconds_without_eval", "eval_return_mean",
            "collect_seconds", "train_update_seconds", "peak_memory_mb")
    return {f"median_{k}": round(statistics.median(r[k] for r in runs), 3) for k in keys} | {
        "eval_returns": [round(r["eval_return_mean"], 1) for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--worker", choices=["r1lab", "sb3"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps((worker_r1lab if args.worker == "r1lab" else worker_sb3)(args.seed, args.steps)))
        return

    runs: dict[str, list[dict]] = {"r1lab": [], "sb3": []}
    ratios = []
    for round_index, seed in enumerate(args.seeds):
        order = ("r1lab", "sb3") if round_index % 2 == 0 else ("sb3", "r1lab")
        pair = {library: run_worker(library, seed, args.steps) for library in order}
        for library, result in pair.items():
            runs[library].append(result)
            print(json.dumps(result), file=sys.stderr)
        ratios.append(pair["r1lab"]["steps_per_second"] / pair["sb3"]["steps_per_second"])
    ours, theirs = summarise(runs["r1lab"]), summarise(runs["sb3"])
    print(json.dumps({
        "task": "PPO on CartPole-v1, rl-baselines3-zoo hyperparameters, 1 torch thread, alternating subprocesses",
        "env_steps": args.steps, "seeds": args.seeds,
        "r1lab": ours, "stable_baselines3": theirs,
        "speedup_steps_per_second_median": round(statistics.median(ratios), 3),
        "speedup_per_seed": [round(r, 3) for r in ratios],
        "speedup_process_seconds": round(theirs["median_process_seconds_without_eval"]
                                         / ours["median_process_seconds_without_eval"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
