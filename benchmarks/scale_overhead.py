"""What Ray costs on a small machine: in-process vs Ray with 1 and 2 workers, at equal work; prints JSON.

    python benchmarks/scale_overhead.py                 # PPO on CartPole and GRPO on the tiny model
    python benchmarks/scale_overhead.py --jobs ppo --repeats 3

Each configuration runs in a fresh subprocess with one torch thread, in turns (local, ray-1, ray-2,
then again), so that a busy machine slows all alike. For each: the training loop's wall time, the
ratio to the in-process loop, `ray.init` and the workers' start (paid once, reported apart), and
the mean per-step split into sampling (collect / generate + score), sync (the weights' broadcast),
learning (estimate + improve / the GRPO update); plus the bytes that travel per step. On 2 cores
there is nothing to win: the figures say what the backend costs, not what it saves.

PPO: the ppo-cartpole preset (8 envs x 32 steps per iteration, 20 epochs), 100 iterations.
GRPO: the tiny model, 8 prompts x 8 samples of up to 64 tokens per step, 10 steps, no evaluation.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {"local": [], "ray-1": ["backend=ray", "num_workers=1"], "ray-2": ["backend=ray", "num_workers=2"]}


def start_ray(sets: list[str]) -> float:
    """The seconds ray.init takes here, started as r1lab starts it (explicit CPUs and object store)."""
    if "backend=ray" not in sets:
        return 0.0
    from r1lab.scale.ray_workers import connect
    from r1lab.scale.settings import ScaleSettings

    return connect(ScaleSettings(backend="ray", object_store_mb=256))


def mean(records: list[dict], key: str) -> float:
    values = [r[key] for r in records if key in r]
    return statistics.fmean(values) if values else 0.0


def run_ppo(sets: list[str], iterations: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from r1lab.policy_gradient import PPOConfig, train_ppo
    from r1lab.runs import load_config, read_metrics

    ray_init = start_ray(sets)
    config = load_config(PPOConfig, "ppo-cartpole", sets=[*sets, f"total_steps={256 * iterations}", "tensorboard=false",
                                                           "eval_episodes=1", "checkpoint_every=1000000"])
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train_ppo(config, run_dir, quiet=True)
        records = read_metrics(run_dir)
    phases = summary["seconds_by_phase"]
    steps = summary["iterations"]
    result = {"wall_seconds": summary["wall_seconds"] - phases["record"], "iterations": steps,
              "ray_init_seconds": ray_init, "workers_start_seconds": summary.get("workers_start_seconds", 0.0),
              "eval_return_mean": summary["eval_return_mean"]}
    if "backend=ray" in sets:
        result["per_step"] = {"sampling": mean(records, "time/sampling") + mean(records, "time/merge"),
                              "sync": mean(records, "time/sync"),
                              "learning": (phases["estimate"] + phases["improve"]) / steps}
    else:
        result["per_step"] = {"sampling": phases["collect"] / steps, "sync": 0.0,
                              "learning": (phases["estimate"] + phases["improve"]) / steps}
    return result


def run_grpo(sets: list[str], steps: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from r1lab.llm.grpo import train_grpo
    from r1lab.pipelines.r1_zero import R1ZeroConfig, job_scorer, training_items
    from r1lab.runs import load_config, read_metrics
    from r1lab.scale import Recipe

    ray_init = start_ray(sets)
    config = load_config(R1ZeroConfig, sets=[*sets, f"steps={steps}", "prompts_per_step=8", "group_size=8",
                                             "max_new_tokens=64", "save_model=false", "log_samples_every=0",
                                             "checkpoint_every=1000000", "train_items=1000"])
    items, _, _ = training_items(config)
    with tempfile.TemporaryDirectory() as run_dir:
        summary = train_grpo(config, Path(run_dir), items, Recipe(job_scorer, config), quiet=True)
        records = [r for r in read_metrics(run_dir) if "time/step" in r]
    result = {"wall_seconds": sum(r["time/step"] for r in records), "steps": len(records),
              "ray_init_seconds": ray_init, "workers_start_seconds": summary.get("workers_start_seconds", 0.0),
              "reward_last": summary["reward_last"],
              "per_step": {"sampling": mean(records, "time/generation") - mean(records, "time/sync")
                           + mean(records, "time/scoring"),
                           "sync": mean(records, "time/sync"), "learning": mean(records, "time/learning")}}
    if "backend=ray" in sets:
        result["per_step"]["worker_generation"] = mean(records, "time/worker_generation")
        result["per_step"]["worker_scoring"] = mean(records, "time/worker_scoring")
    return result


def traffic() -> dict:
    """Bytes each step sends: the weights (one ray.put) and one worker's shard (rollout or completions
    with their scores), and the state a rollout worker returns for a redo, pickled as Ray pickles them."""
    import torch

    torch.set_num_threads(1)
    from r1lab.llm.generation import SamplingSettings
    from r1lab.pipelines.r1_zero import R1ZeroConfig, job_scorer, training_items
    from r1lab.policy_gradient import NumpyPolicy, PPOConfig
    from r1lab.policy_gradient.policies import ActorCritic
    from r1lab.runs import load_config
    from r1lab.scale import Recipe
    from r1lab.scale.generation_worker import GenerationSpec, GenerationWorker
    from r1lab.scale.ray_generation import trained_state
    from r1lab.scale.rollout_worker import RolloutWorker
    from r1lab.scale.sampling import text_scorer

    ppo = load_config(PPOConfig, "ppo-cartpole", sets=["backend=ray", "num_workers=2"])
    worker = RolloutWorker(ppo, 0)
    policy = ActorCritic(worker.collector.encode.size, worker.collector.envs.single_action_space, ppo.hidden_sizes)
    weights = {"policy": NumpyPolicy(policy), "obs_stats": None, "reward_stats": None}
    worker.set_weights(weights, 0)
    shard = worker.sample()
    config = load_config(R1ZeroConfig, sets=["max_new_tokens=64", "train_items=100"])
    items, _, _ = training_items(config)
    spec = GenerationSpec("tiny", None, config.lora, SamplingSettings(64), text_scorer(Recipe(job_scorer, config)))
    generator = GenerationWorker(spec, 0)
    prompts = [f"Question: {item.question}" for item in items[:4] for _ in range(8)]
    fields = {"answer": [item.answer for item in items[:4] for _ in range(8)]}
    generated = generator.sample((prompts, fields, 0))
    size = lambda value: len(pickle.dumps(value))  # noqa: E731
    return {"ppo": {"weights_bytes": size(weights), "shard_bytes_per_worker_of_2": size(shard.data),
                    "worker_state_bytes": size(shard.state)},
            "grpo": {"weights_bytes": size(trained_state(generator.model)),
                     "shard_bytes_per_32_completions": size(generated.data)}}


def child(job: str, name: str, size: int) -> None:
    if job == "traffic":
        return print(json.dumps(traffic()))
    runner = run_ppo if job == "ppo" else run_grpo
    print(json.dumps(runner(CONFIGS[name], size)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", nargs="+", default=["ppo", "grpo"], choices=["ppo", "grpo"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ppo-iterations", type=int, default=100)
    parser.add_argument("--grpo-steps", type=int, default=10)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))
    report: dict = {"machine_cpus": len(__import__("os").sched_getaffinity(0))}
    out = subprocess.run([sys.executable, __file__, "--child", "traffic", "local", "0"], check=True,
                         capture_output=True, text=True).stdout
    report["traffic"] = json.loads(out.strip().splitlines()[-1])
    for job in args.jobs:
        size = args.ppo_iterations if job == "ppo" else args.grpo_steps
        runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        for _ in range(args.repeats):
            for name in CONFIGS:
                started = time.perf_counter()
                out = subprocess.run([sys.executable, __file__, "--child", job, name, str(size)], check=True,
                                     capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                result["process_seconds"] = time.perf_counter() - started
                runs[name].append(result)
        summary = {}
        local_wall = statistics.median(r["wall_seconds"] for r in runs["local"])
        for name, results in runs.items():
            wall = statistics.median(r["wall_seconds"] for r in results)
            summary[name] = {
                "wall_seconds": wall, "ratio_to_local": wall / local_wall,
                "ray_init_seconds": statistics.median(r["ray_init_seconds"] for r in results),
                "workers_start_seconds": statistics.median(r["workers_start_seconds"] for r in results),
                "per_step_seconds": {k: statistics.median(r["per_step"][k] for r in results)
                                     for k in results[0]["per_step"]},
                "walls": [r["wall_seconds"] for r in results],
                **{k: results[-1][k] for k in ("eval_return_mean", "reward_last") if k in results[-1]},
            }
        report[job] = summary
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
