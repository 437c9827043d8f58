"""PPO with a critic against GRPO on the same task, rule reward, samples per step and step budget.

The seed's §3.4: GRPO drops PPO's value model to be simpler and lighter. Both train the bundled
tiny model on R1-Zero-templated arithmetic (the `r1lab r1-zero` job's task and prompts) with the
accuracy and format rewards, 16 prompts x 8 completions per step, up to 128 new tokens at
temperature 1, no KL term (beta = 0, no reference model), lr 1e-4, micro-batches of 64:

    grpo       r1lab's GRPO: group-relative advantages, one pass per batch (mu = 1)
    ppo        r1lab's RLHF-PPO with the rule reward as the score: a critic (the policy's trunk copied,
               a fresh value head), token-level GAE (gamma 1, lambda 0.95), 1 PPO epoch (the same
               number of optimiser steps as GRPO)
    ppo-4      the same with PPO's usual 4 epochs over each batch

Each runs in a process of its own (so that its peak memory is its own), one after the other:

    .venv/bin/python benchmarks/ppo_vs_grpo.py --steps 40

Prints JSON: held-out greedy accuracy and format rate (200 questions) before and after, seconds
per step (median), peak resident memory of the process, and the memory the trained models hold
(weights, gradients and AdamW's two moments, fp32).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

VARIANTS = ("grpo", "ppo", "ppo-4")


def trained_state_mb(*models) -> float:
    """Weights + gradients + AdamW's two moments of every trainable parameter, fp32."""
    count = sum(p.numel() for model in models for p in model.parameters() if p.requires_grad)
    return 4 * count * 4 / 2**20


def run_grpo(args) -> dict:
    from r1lab.pipelines.r1_zero import R1ZeroConfig, run_grpo_job

    config = R1ZeroConfig(steps=args.steps, group_size=8, prompts_per_step=16, max_new_tokens=args.max_new_tokens,
                          lr=args.lr, beta=0.0, eval_every=0, eval_items=200, eval_k=0, micro_batch_size=64,
                          checkpoint_every=10**6, checkpoint_minutes=10**6, log_samples_every=0, save_model=False,
                          seed=args.seed)
    summary = run_grpo_job(config, args.run_dir, quiet=True)
    from r1lab.llm.loading import load_model

    return {"before": _table(summary["before"]), "after": _table(summary["after"]),
            "seconds_per_step_median": summary["seconds_per_step_median"],
            "peak_rss_mb": summary["peak_memory_mb"], "trained_state_mb": trained_state_mb(load_model("tiny").policy),
            "reward_last": summary["reward_last"]}


def run_ppo(args, epochs: int) -> dict:
    import resource

    from r1lab.llm import rlhf, rlhf_models
    from r1lab.llm.rlhf_config import RLHFConfig
    from r1lab.pipelines.evaluate import EvalSettings, evaluate
    from r1lab.pipelines.r1_zero import R1ZeroConfig, default_rewards, training_items
    from r1lab.rewards import scorer

    grpo_config = R1ZeroConfig(seed=args.seed)  # the R1-Zero job's prompts and rewards
    train, _, task = training_items(grpo_config)
    held_out = task.items(200, "test", args.seed)
    settings = EvalSettings(template="r1-zero", items=200, k=0, max_new_tokens=args.max_new_tokens, seed=args.seed)
    config = RLHFConfig(model="tiny", task="arithmetic", template="r1-zero", prompts_per_step=16, samples_per_prompt=8,
                        max_new_tokens=args.max_new_tokens, temperature=1.0, critic_init="policy", beta=0.0,
                        measure_kl=False, missing_eos_penalty=0.0, gamma=1.0, lam=0.95, steps=args.steps,
                        ppo_epochs=epochs, num_minibatches=1, micro_batch_size=64, lr=args.lr, seed=args.seed,
                        log_samples_every=0, checkpoint_every=10**6, checkpoint_minutes=10**6, save_model=False)
    state = {}

    def evaluator(models) -> dict:
        state.setdefault("mb", trained_state_mb(models.policy, models.critic))
        return evaluate(models.policy, models.tokenizer, held_out, settings, task)

    summary = rlhf.train_rlhf(config, args.run_dir, train, rlhf_models.rule_scorer(scorer(default_rewards(grpo_config))),
                              evaluator=evaluator, quiet=True, job="ppo-arithmetic")
    before, after = summary["evaluations"][0], summary["evaluations"][-1]
    return {"before": _table(before), "after": _table(after), "seconds_per_step_median": summary["seconds_per_step_median"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "trained_state_mb": state["mb"],
            "reward_last": summary["rm_score_last"]}


def _table(evaluation: dict) -> dict:
    return {k: evaluation.get(k) for k in ("accuracy", "answer_anywhere_accuracy", "format_rate", "mean_length")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        import torch

        torch.set_num_threads(args.threads)
        result = run_grpo(args) if args.only == "grpo" else run_ppo(args, 4 if args.only == "ppo-4" else 1)
        print(json.dumps(result))
        return
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--only", variant, "--run-dir", f"{tmp}/{variant}",
                       *(f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("only", "run_dir"))]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{variant}: {results[variant]['after']}", file=sys.stderr)
    grpo = results["grpo"]
    json.dump({"settings": {k: v for k, v in vars(args).items() if k not in ("only", "run_dir")},
               **results,
               "ppo_seconds_per_step_over_grpo": {v: results[v]["seconds_per_step_median"] / grpo["seconds_per_step_median"]
                                                  for v in VARIANTS[1:]},
               "ppo_trained_state_over_grpo": {v: results[v]["trained_state_mb"] / grpo["trained_state_mb"]
                                               for v in VARIANTS[1:]}}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
