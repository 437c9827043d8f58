"""The policy-gradient learning targets, over 5 seeds; prints JSON.

    python benchmarks/pg_targets.py                       # all four targets, seeds 0-4 (~6 min on 2 cores)
    python benchmarks/pg_targets.py --only ppo-cartpole --seeds 0 1
    python benchmarks/pg_targets.py --only variance       # REINFORCE's gradient variance per Psi

Each target trains the shipped preset for its step budget and evaluates the deterministic policy
over 20 episodes at the end (summary.json's eval_return_mean):

    ppo-cartpole        PPO on CartPole-v1,   100k steps, eval return >= 475 for at least 4 of 5 seeds
    trpo-cartpole       TRPO on CartPole-v1,  100k steps, >= 475
    reinforce-cartpole  REINFORCE with baseline on CartPole-v1, 200k steps, >= 200
    ppo-pendulum        PPO on Pendulum-v1 (Gaussian policy), 200k steps, >= -300

`variance` trains REINFORCE with a baseline for 20k steps, freezes the policy and critic, and
measures the policy gradient's variance over 30 independent batches under Psi = R(tau), G_t and
G_t - V(s_t) (r1lab.policy_gradient.reinforce.gradient_variance).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

TARGETS = {
    "ppo-cartpole": ("ppo", "ppo-cartpole", 100_000, 475.0),
    "trpo-cartpole": ("trpo", "trpo-cartpole", 100_000, 475.0),
    "reinforce-cartpole": ("reinforce", "reinforce-cartpole", 200_000, 200.0),
    "ppo-pendulum": ("ppo", "ppo-pendulum", 200_000, -300.0),
}


def run_target(name: str, seeds: list[int], workdir: Path) -> dict:
    from r1lab.policy_gradient import CONFIGS, TRAINERS
    from r1lab.runs import load_config

    algorithm, preset, steps, threshold = TARGETS[name]
    per_seed = []
    for seed in seeds:
        config = load_config(CONFIGS[algorithm], preset, sets=[
            f"seed={seed}", f"total_steps={steps}", "eval_episodes=20", "tensorboard=false"])
        summary = TRAINERS[algorithm](config, workdir / f"{name}-{seed}", quiet=True)
        per_seed.append({"seed": seed, "eval_return_mean": round(summary["eval_return_mean"], 2),
                         "eval_return_std": round(summary["eval_return_std"], 2),
                         "train_return_recent": round(summary["train_return_recent"], 2),
                         "wall_seconds": round(summary["wall_seconds"], 2), "passed": summary["eval_return_mean"] >= threshold})
        print(f"{name} seed {seed}: {per_seed[-1]}", file=sys.stderr)
    returns = [r["eval_return_mean"] for r in per_seed]
    return {"algorithm": algorithm, "preset": preset, "env_steps": steps, "threshold": threshold,
            "seeds_passed": sum(r["passed"] for r in per_seed), "seeds": len(seeds),
            "median_eval_return": statistics.median(returns),
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in per_seed), "per_seed": per_seed}


def run_variance(seeds: list[int], workdir: Path, batches: int = 30) -> dict:
    import numpy as np
    import torch

    from r1lab.policy_gradient import ReinforceConfig, train_reinforce
    from r1lab.policy_gradient.evaluate import load_run
    from r1lab.policy_gradient.reinforce import gradient_variance
    from r1lab.policy_gradient.rollout import RolloutCollector, make_vector_env
    from r1lab.runs import load_config

    per_seed = []
    for seed in seeds:
        config = load_config(ReinforceConfig, "reinforce-cartpole", sets=[
            f"seed={seed}", "total_steps=20000", "eval_episodes=0", "tensorboard=false"])
        train_reinforce(config, workdir / f"variance-{seed}", quiet=True)
        _, config, policy, _ = load_run(workdir / f"variance-{seed}")
        torch.manual_seed(seed)
        collector = RolloutCollector(make_vector_env(config.env_id, config.num_envs), config.steps_per_env, config.gamma)
        collector.reset(seed=seed + 1000)
        measured = gradient_variance(policy, collector, np.random.default_rng(seed), config, batches)
        collector.close()
        per_seed.append({"seed": seed, **{k: float(f"{v:.4g}") for k, v in measured.items()}})
        print(f"variance seed {seed}: {per_seed[-1]}", file=sys.stderr)
    names = ("total_return", "reward_to_go", "reward_to_go_baseline")
    medians = {name: statistics.median(r[name] for r in per_seed) for name in names}
    return {"policy": "REINFORCE with baseline after 20k CartPole steps (frozen)", "batches": batches,
            "batch_size": config.batch_size, "median_total_variance": medians,
            "variance_relative_to_total_return": {n: round(medians[n] / medians["total_return"], 4) for n in names},
            "median_relative_variance": {n: statistics.median(r[f"{n}_relative"] for r in per_seed) for n in names},
            "per_seed": per_seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=[*TARGETS, "variance"], help="Run only these.")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    chosen = args.only or [*TARGETS, "variance"]
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in chosen:
            if name == "variance":
                results[name] = run_variance(args.seeds, Path(workdir))
            else:
                results[name] = run_target(name, args.seeds, Path(workdir))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
