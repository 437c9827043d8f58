"""r1lab's GRPO against TRL's GRPOTrainer: same model, prompts, group size, lengths and optimiser.

TRL is never a dependency of r1lab; this script runs in an environment of its own:

    python3 -m venv .bench-venv-trl
    .bench-venv-trl/bin/pip install torch==2.13.0
    .bench-venv-trl/bin/pip install trl -e .
    .bench-venv-trl/bin/python benchmarks/grpo_vs_trl.py --grid --steps 12   # the 8-cell grid
    .bench-venv-trl/bin/python benchmarks/grpo_vs_trl.py --steps 20          # one cell (16 x 8, 128 tokens)

Both train the bundled tiny model on R1-Zero-templated arithmetic with the accuracy and format
rewards, G completions for each of P prompts per optimiser step, one pass per batch (mu = 1),
the paper's per-sequence loss, rewards scaled by the group's std, and with beta > 0 the k3 KL to
a frozen reference. `--grid` runs every cell of prompts x samples {8 x 8, 16 x 8}, new tokens
{32, 128} and beta {0, 0.04}; in each cell the two trainers alternate, r1lab first in even cells.
Prints JSON: per cell, seconds per step (median), completion tokens per second, the reward curve
of both, the ratio, and where a step's time goes: generation (sampling), rollout (sampling,
rewards, advantages and, in TRL, the reference forward) and learning (in r1lab, with the
reference forward, reported apart as `reference_seconds_median`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def settings(args) -> dict:
    return dict(group_size=args.group_size, prompts_per_step=args.prompts, max_new_tokens=args.max_new_tokens,
                lr=args.lr, steps=args.steps, temperature=1.0, seed=args.seed, micro_batch_size=args.micro_batch,
                beta=args.beta)


def run_r1lab(args, items, workdir: Path) -> dict:
    from r1lab.llm.grpo import train_grpo
    from r1lab.llm.grpo_config import GRPOConfig
    from r1lab.rewards import reward_functions, scorer

    config = GRPOConfig(model="tiny", template="r1-zero", loss_type="grpo", scale_rewards="group",
                        num_iterations=1, max_grad_norm=1.0, adam_betas=(0.9, 0.999), checkpoint_every=10**6,
                        log_samples_every=0, save_model=False, **settings(args))
    train_grpo(config, workdir / "r1lab", items, scorer(reward_functions(["accuracy", "format"])), quiet=True)
    records = [json.loads(line) for line in (workdir / "r1lab" / "metrics.jsonl").read_text().splitlines()]
    times = [r["time/step"] for r in records]
    tokens = [r["completion_length/mean"] * args.group_size * args.prompts for r in records]
    return {"seconds_per_step_median": statistics.median(times),
            "completion_tokens_per_second": sum(tokens) / sum(times),
            "reward_curve": [round(r["reward"], 4) for r in records],
            "generation_seconds_median": statistics.median(r["time/generation"] for r in records),
            "rollout_seconds_median": statistics.median(r["time/generation"] + r["time/scoring"] for r in records),
            "learning_seconds_median": statistics.median(r["time/learning"] for r in records),
            "reference_seconds_median": statistics.median(r.get("time/reference", 0.0) for r in records)}


def run_trl(args, items, workdir: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1lab.llm.loading import tiny_model_path
    from r1lab.rewards import accuracy_reward, format_reward
    from r1lab.tasks.templates import r1_zero_prompt

    class StepClock(TrainerCallback):
        def __init__(self):
            self.started, self.seconds, self.logs = None, [], []

        def on_step_begin(self, *_, **__):
            self.started = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.seconds.append(time.perf_counter() - self.started)

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "reward" in logs:
                self.logs.append(logs)

    path = str(tiny_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r1_zero_prompt(i.question), "answer": i.answer} for i in items])
    completions_per_step = args.group_size * args.prompts
    config = GRPOConfig(
        output_dir=str(workdir / "trl"), max_steps=args.steps, learning_rate=args.lr, lr_scheduler_type="constant",
        per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=completions_per_step // args.micro_batch,
        num_generations=args.group_size, max_completion_length=args.max_new_tokens, temperature=1.0,
        beta=args.beta, num_iterations=1, loss_type="grpo", scale_rewards="group", epsilon=0.2, max_grad_norm=1.0,
        weight_decay=0.0, warmup_steps=0, logging_steps=1, report_to="none", save_strategy="no", seed=args.seed,
        bf16=False, use_cpu=True, disable_tqdm=True, top_k=0,
    )
    clock = StepClock()
    trainer = GRPOTrainer(model=model, reward_funcs=[accuracy_reward, format_reward], args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[clock])
    generation = timed(trainer, "_generate")  # sampling only
    rollout = timed(trainer, "_generate_and_score_completions")  # sampling, rewards, advantages
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout is for the JSON
        trainer.train()
    tokens = [log["completions/mean_length"] * completions_per_step for log in clock.logs]
    # TRL builds the whole step's rollout in one call (micro-batches are slices of it), so the
    # learning time of a step is what its clock shows minus that call
    learning = [step - built for step, built in zip(clock.seconds, rollout)]
    return {"seconds_per_step_median": statistics.median(clock.seconds),
            "completion_tokens_per_second": sum(tokens) / sum(clock.seconds),
            "reward_curve": [round(log["reward"], 4) for log in clock.logs],
            "generation_seconds_median": statistics.median(generation),
            "rollout_seconds_median": statistics.median(rollout),
            "learning_seconds_median": statistics.median(learning)}


def timed(obj, method: str) -> list[float]:
    """Wrap obj.method so that every call's wall time is appended to the returned list."""
    seconds, original = [], getattr(obj, method)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(obj, method, wrapper)
    return seconds


GRID = [dict(prompts=prompts, max_new_tokens=tokens, beta=beta)
        for prompts in (8, 16) for tokens in (32, 128) for beta in (0.0, 0.04)]


def run_cell(args, items) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        runners = [("r1lab", run_r1lab), ("trl", run_trl)]
        results = {name: runner(args, items, Path(tmp) / name) for name, runner in
                   (runners if args.r1lab_first else runners[::-1])}
    ours, theirs = results["r1lab"], results["trl"]
    window = max(1, args.steps // 4)
    return {
        "settings": {**settings(args), "threads": args.threads, "torch": torch.__version__},
        "r1lab": ours, "trl": theirs,
        "step_speedup": theirs["seconds_per_step_median"] / ours["seconds_per_step_median"],
        "tokens_per_second_ratio": ours["completion_tokens_per_second"] / theirs["completion_tokens_per_second"],
        "reward_last_quarter": {"r1lab": statistics.mean(ours["reward_curve"][-window:]),
                                "trl": statistics.mean(theirs["reward_curve"][-window:])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--micro-batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grid", action="store_true", help="every cell of the 8-cell grid")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from r1lab.tasks import ArithmeticTask

    items = ArithmeticTask(max_digits=3).items(4000, "train", seed=args.seed)
    if not args.grid:
        args.r1lab_first = True
        json.dump(run_cell(args, items), sys.stdout, indent=2)
        print()
        return
    cells = []
    for index, cell in enumerate(GRID):
        for key, value in cell.items():
            setattr(args, key, value)
        args.r1lab_first = index % 2 == 0
        cells.append(run_cell(args, items))
        print(f"cell {index + 1}/{len(GRID)} {cell}: {cells[-1]['step_speedup']:.2f}x", file=sys.stderr)
    summary = [{**cell, "speedup": round(result["step_speedup"], 2),
                "r1lab_seconds": round(result["r1lab"]["seconds_per_step_median"], 3),
                "trl_seconds": round(result["trl"]["seconds_per_step_median"], 3)}
               for cell, result in zip(GRID, cells)]
    json.dump({"grid": summary, "cells": cells}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
