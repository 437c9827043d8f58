"""Reward hacking, shown: PPO against a deliberately weak reward model, without and with the KL penalty.

The seed's box on reward hacking: an agent that maximises an imperfect reward finds the reward's
flaws instead of the behaviour it was meant to teach. Here the flaw is made on purpose: a
helpfulness reward model trained on only a handful of pairs (`--pairs`, default 16), so it has
seen almost nothing of what makes a reply helpful (or, with `--weak length`, one trained to
prefer the longer of two answers whatever they say). Two runs of `r1lab rlhf` on the tiny world's
benign requests then chase it, identical but for beta: 0 (no KL penalty) and `--beta`. Every
`--eval-every` steps both are checked on held-out requests by the weak RM (its score) and by
the task's own rule (`is_helpful`), on replies sampled at T = 1 (the distribution the RM scores
and PPO optimises) and on greedy ones:

    .venv/bin/python benchmarks/reward_hacking.py --steps 60 --plot docs/img/rlhf-reward-hacking.png

Prints JSON (the weak RM's held-out pairwise accuracy, and per run the curves of RM score,
helpful rates and KL to the reference) and draws the curves of both runs into one figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def weak_reward_model(args, workdir: Path) -> tuple[Path, dict]:
    """`few`: the helpfulness pairs, only `--pairs` of them. `length`: pairs that prefer the longer of
    two answers, whatever they say (a good answer with a bad one appended, over the good one alone)."""
    from r1lab.llm.reward_model_training import train_reward_model
    from r1lab.llm.rlhf_config import RewardModelConfig
    from r1lab.tasks.general import preference_pairs

    pairs = None
    if args.weak == "length":
        pairs = [{"prompt": p["prompt"], "chosen": f"{p['chosen']} {p['rejected']}", "rejected": p["chosen"]}
                 for p in preference_pairs("helpful", args.pairs, "train", args.seed)]
    config = RewardModelConfig(model=args.model, data="helpful", train_pairs=args.pairs, batch_size=min(8, args.pairs),
                               steps=args.rm_steps, eval_pairs=200, lr=1e-3, normalization_pairs=args.pairs,
                               seed=args.seed, checkpoint_every=10**6)
    summary = train_reward_model(config, workdir / "weak-rm", dataset=pairs, quiet=True,
                                 eval_dataset=preference_pairs("helpful", 200, "test", args.seed))
    return workdir / "weak-rm" / "model", summary


def run(args, reward_model: Path, beta: float, workdir: Path) -> dict:
    from r1lab.pipelines.rlhf import RLHFJobConfig, run_rlhf_job
    from r1lab.runs import read_metrics

    config = RLHFJobConfig(model=args.model, reward_model=str(reward_model), task="chat", beta=beta, steps=args.steps,
                           lr=args.lr, prompts_per_step=args.prompts, samples_per_prompt=1,
                           max_new_tokens=args.max_new_tokens,
                           eval_every=args.eval_every, eval_items=args.eval_items, eval_k=2, seed=args.seed,
                           checkpoint_every=10**6, save_model=False)
    summary = run_rlhf_job(config, workdir / f"beta-{beta}", quiet=True)
    keys = ("rm_score", "sampled_helpful_rate", "helpful_rate", "kl", "mean_length")
    curves = {"step": [], **{key: [] for key in keys}}
    for record in read_metrics(workdir / f"beta-{beta}"):
        if "eval/helpful_rate" in record:
            curves["step"].append(record["step"])
            for key in keys:
                curves[key].append(round(record[f"eval/{key}"], 4))
    return {"beta": beta, "curves": curves, "before": summary["before"], "after": summary["after"],
            "examples_after": summary["examples_after"][:4]}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for result, colour in zip(results, ("tab:red", "tab:blue")):
        c, label = result["curves"], f"beta = {result['beta']:g}"
        axes[0].plot(c["step"], c["rm_score"], marker="o", color=colour, label=label)
        axes[1].plot(c["step"], c["sampled_helpful_rate"], marker="o", color=colour, label=f"{label}, sampled")
        axes[1].plot(c["step"], c["helpful_rate"], ls="--", color=colour, label=f"{label}, greedy")
        axes[2].plot(c["step"], c["kl"], marker="o", color=colour, label=label)
    for ax, title in zip(axes, ("weak RM's score (held out)", "helpful rate: the task's own check", "KL to the reference (nats)")):
        ax.set_title(title)
        ax.set_xlabel("PPO step")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_ylim(-0.02, 1.02)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--weak", choices=("few", "length"), default="few", help="how the reward model is weak")
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--rm-steps", type=int, default=30)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--eval-items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reward_model, rm_summary = weak_reward_model(args, Path(tmp))
        results = [run(args, reward_model, beta, Path(tmp)) for beta in (0.0, args.beta)]
    if args.plot:
        plot(results, args.plot)
    json.dump({"settings": vars(args) | {"plot": str(args.plot)},
               "weak_rm": {"kind": args.weak, "train_pairs": rm_summary["train_pairs"],
                           "eval_accuracy_on_helpfulness_pairs": rm_summary["eval_accuracy"]},
               "runs": results}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
