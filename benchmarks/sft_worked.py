"""What SFT on worked solutions does to the bundled base model, on the R1-Zero job's held-out split.

    python benchmarks/sft_worked.py --pairs 2000 --steps 100

Writes N (prompt, worked solution in <think>/<answer> tags) pairs of 1-4 digit arithmetic, runs
`train_sft` on them under the R1-Zero template, and evaluates the base and the tuned model greedily
on the same 200 held-out questions `r1lab r1-zero` uses (split "test", seed 0). This is DeepSeek-R1's
cold start in miniature: a little supervised data in the wanted format, before any RL. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from r1lab.llm.loading import load_model
from r1lab.llm.sft import SFTConfig, train_sft
from r1lab.pipelines.evaluate import EvalSettings, evaluate
from r1lab.tasks import get_task
from r1lab.tasks.templates import tagged_response

METRICS = ("accuracy", "answer_anywhere_accuracy", "format_rate", "mean_length")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-items", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = get_task("arithmetic")
    held_out = task.items(args.eval_items, "test", args.seed)
    settings = EvalSettings(template="r1-zero", items=len(held_out), k=0, seed=args.seed)
    base = load_model("tiny")
    before = evaluate(base.policy, base.tokenizer, held_out, settings, task)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "worked.jsonl"
        pairs = [{"prompt": item.question, "completion": tagged_response(item.solution, item.answer)}
                 for item in task.items(args.pairs, "train", args.seed + 1)]
        data.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
        started = time.perf_counter()
        summary = train_sft(SFTConfig(data=str(data), template="r1-zero", max_steps=args.steps,
                                      batch_size=args.batch_size, lr=args.lr, seed=args.seed),
                            Path(tmp) / "run", quiet=True)
        seconds = time.perf_counter() - started
        tuned = load_model(summary["model_dir"])
        after = evaluate(tuned.policy, tuned.tokenizer, held_out, settings, task)

    result = {"settings": vars(args), "train_seconds": seconds,
              "eval_loss_first": summary["eval_loss_first"], "eval_loss_last": summary["eval_loss_last"],
              "before": {k: before[k] for k in METRICS}, "after": {k: after[k] for k in METRICS}}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
