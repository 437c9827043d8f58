"""r1lab's RLHF-PPO against TRL's PPOTrainer: same policy, reward model, critic, prompts and settings.

TRL removed its PPO trainer in 1.13; 1.12.0 is the last release with `trl.experimental.ppo`. TRL is
never a dependency of r1lab; this script runs in an environment of its own, with TRL 1.12 added
without its dependency resolution (it would otherwise replace torch and transformers):

    python3 -m venv .bench-venv-trl112
    .bench-venv-trl112/bin/pip install torch==2.13.0
    .bench-venv-trl112/bin/pip install -e .
    .bench-venv-trl112/bin/pip install --no-deps trl==1.12.0
    .bench-venv-trl112/bin/pip install accelerate datasets        # TRL's own dependencies (pandas comes with datasets)
    .bench-venv-trl112/bin/python benchmarks/rlhf_vs_trl.py --steps 20

TRL 1.12's PPOTrainer runs unchanged with transformers 5.24 and torch 2.13.

Both trainers align the bundled tiny model on the tiny world's benign requests (chat template)
against one helpfulness reward model trained here first (or `--reward-model DIR`): the critic
starts from the reward model, P prompts and one completion each per step, up to N new tokens at
temperature 1, 4 PPO epochs over one minibatch accumulated in micro-batches, k1 KL in the reward
with a fixed beta, gamma 1, lambda 0.95, clip 0.2 for the ratio and the value, vf_coef 0.1, the
missing-EOS penalty 1, constant lr, raw (unnormalised) scores as TRL uses them, no gradient
clipping (TRL's PPO loop does not clip), fp32, 2 torch threads; the two run one after the other
in one process. Prints JSON: seconds per step (median) and where a step's time goes, the score
curve of each (the reward model's score after the EOS penalty, as TRL logs `objective/scores`),
and the same held-out check of both final policies: the reward model's mean raw score of
sampled replies to held-out requests (r1lab's sampler and scorer for both).
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


def train_reward_model(workdir: Path, seed: int) -> Path:
    from r1lab.llm.reward_model_training import train_reward_model as train
    from r1lab.llm.rlhf_config import RewardModelConfig

    train(RewardModelConfig(data="helpful", steps=80, train_pairs=2000, seed=seed, checkpoint_every=10**6),
          workdir / "rm", quiet=True)
    return workdir / "rm" / "model"


def prompts(args, split: str, count: int):
    from r1lab.llm.loading import load_tokenizer
    from r1lab.llm.prompts import apply_template
    from r1lab.tasks import ChatTask

    tokenizer = load_tokenizer("tiny")
    items = ChatTask().items(count, split, seed=args.seed)
    return items, [apply_template("chat", item.question, tokenizer) for item in items]


def r1lab_config(args, reward_model: Path):
    from r1lab.llm.rlhf_config import RLHFConfig

    return RLHFConfig(model="tiny", reward_model=str(reward_model), critic_init="reward_model", task="chat",
                      prompts_per_step=args.prompts, max_new_tokens=args.max_new_tokens, temperature=1.0,
                      normalize_reward=False, missing_eos_penalty=1.0, beta=args.beta, kl_estimator="k1",
                      gamma=1.0, lam=0.95, steps=args.steps, ppo_epochs=4, num_minibatches=1,
                      micro_batch_size=args.micro_batch, padding_free=args.padding_free, clip_ratio=0.2,
                      clip_value=0.2, vf_coef=0.1, lr=args.lr,
                      lr_schedule="constant", max_grad_norm=1e9, seed=args.seed, log_samples_every=0,
                      checkpoint_every=10**6, checkpoint_minutes=10**6, save_model=True)


def run_r1lab(args, reward_model: Path, workdir: Path) -> tuple[dict, object]:
    from r1lab.llm import rlhf, rlhf_models
    from r1lab.llm.loading import load_model, load_tokenizer
    from r1lab.llm.reward_model import load_reward_model

    config = r1lab_config(args, reward_model)
    items, _ = prompts(args, "train", 4000)
    scorer = rlhf_models.reward_model_scorer(load_reward_model(reward_model), load_tokenizer("tiny"), normalize=False,
                                             padding_free=args.padding_free)
    rlhf.train_rlhf(config, workdir, items, scorer, quiet=True)
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    result = {"seconds_per_step_median": statistics.median(r["time/step"] for r in records),
              "score_curve": [round(r["score"], 4) for r in records],
              "generation_seconds_median": statistics.median(r["time/generation"] for r in records),
              "rollout_seconds_median": statistics.median(r["time/generation"] + r["time/estimate"] for r in records),
              "learning_seconds_median": statistics.median(r["time/learning"] for r in records),
              "kl_curve": [round(r["kl"], 3) for r in records]}
    return result, load_model(workdir / "model").policy


def run_trl(args, reward_model: Path, workdir: Path) -> tuple[dict, object]:
    from datasets import Dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    from r1lab.llm.loading import tiny_model_path

    class StepClock(TrainerCallback):
        def __init__(self):
            self.last, self.seconds, self.logs = None, [], []

        def on_train_begin(self, *_, **__):
            self.last = time.perf_counter()

        def on_step_end(self, *_, **__):
            now = time.perf_counter()
            self.seconds.append(now - self.last)
            self.last = now

        def on_log(self, _args, _state, _control, logs=None, **__):
            if logs and "objective/scores" in logs:
                self.logs.append(logs)

    path = str(tiny_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    value_model = AutoModelForSequenceClassification.from_pretrained(str(reward_model), num_labels=1)
    scorer = AutoModelForSequenceClassification.from_pretrained(str(reward_model), num_labels=1)
    _, texts = prompts(args, "train", 4000)
    data = Dataset.from_dict({"input_ids": [tokenizer(t)["input_ids"] for t in texts]})
    held, held_texts = prompts(args, "test", 16)
    eval_data = Dataset.from_dict({"input_ids": [tokenizer(t)["input_ids"] for t in held_texts]})
    config = PPOConfig(
        output_dir=str(workdir), learning_rate=args.lr, lr_scheduler_type="constant",
        per_device_train_batch_size=args.micro_batch, gradient_accumulation_steps=args.prompts // args.micro_batch,
        num_mini_batches=1, total_episodes=args.steps * args.prompts, local_rollout_forward_batch_size=args.prompts,
        response_length=args.max_new_tokens, stop_token="eos", temperature=1.0, missing_eos_penalty=1.0,
        num_ppo_epochs=4, kl_coef=args.beta, kl_estimator="k1", cliprange=0.2, cliprange_value=0.2, vf_coef=0.1,
        gamma=1.0, lam=0.95, whiten_rewards=False, num_sample_generations=0, logging_steps=1, report_to="none",
        save_strategy="no", seed=args.seed, bf16=False, use_cpu=True, disable_tqdm=True, weight_decay=0.0,
        per_device_eval_batch_size=8,
    )
    clock = StepClock()
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=policy, ref_model=reference, reward_model=scorer,
                         value_model=value_model, train_dataset=data, eval_dataset=eval_data, callbacks=[clock])
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout is for the JSON
        trainer.train()
    result = {"seconds_per_step_median": statistics.median(clock.seconds),
              "score_curve": [round(log["objective/scores"], 4) for log in clock.logs],
              "kl_curve": [round(log["objective/kl"], 3) for log in clock.logs]}
    return result, trainer.policy_model


@torch.no_grad()
def held_out_score(policy, reward_model: Path, args) -> float:
    """Mean raw reward-model score of 2 sampled replies to each of 200 held-out requests."""
    from r1lab.llm.generation import SamplingSettings, generate
    from r1lab.llm.loading import load_tokenizer
    from r1lab.llm.reward_model import load_reward_model

    tokenizer = load_tokenizer("tiny")
    model = load_reward_model(reward_model)
    _, texts = prompts(args, "test", 200)
    texts = [t for t in texts for _ in range(2)]
    policy.eval()
    completions = generate(policy, tokenizer, texts, SamplingSettings(args.max_new_tokens, 1.0),
                           torch.Generator().manual_seed(1234))
    scores = model.score_tokens(completions.prompt_ids, completions.prompt_mask, completions.completion_ids,
                                completions.completion_mask)
    return (scores - completions.truncated.float()).mean().item()  # after the EOS penalty, as in training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--beta", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--padding-free", action=argparse.BooleanOptionalAction, default=True,
                        help="r1lab packs each micro-batch's real tokens (the same numbers; TRL computes the padding)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reward-model", type=Path, default=None)
    parser.add_argument("--trl-first", action="store_true", help="run TRL before r1lab")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        reward_model = args.reward_model or train_reward_model(workdir, args.seed)
        runners = [("r1lab", run_r1lab), ("trl", run_trl)]
        results = {}
        for name, runner in runners[::-1] if args.trl_first else runners:
            torch.manual_seed(args.seed)
            result, policy = runner(args, reward_model, workdir / name)
            result["held_out_score"] = held_out_score(policy, reward_model, args)
            results[name] = result
    ours, theirs = results["r1lab"], results["trl"]
    window = max(1, args.steps // 4)
    json.dump({
        "settings": {"steps": args.steps, "prompts_per_step": args.prompts, "max_new_tokens": args.max_new_tokens,
                     "micro_batch": args.micro_batch, "beta": args.beta, "lr": args.lr, "threads": args.threads,
                     "padding_free": args.padding_free, "torch": torch.__version__, "order": "trl first" if args.trl_first else "r1lab first"},
        "r1lab": ours, "trl": theirs,
        "step_speedup": theirs["seconds_per_step_median"] / ours["seconds_per_step_median"],
        "score_last_quarter": {"r1lab": statistics.mean(ours["score_curve"][-window:]),
                               "trl": statistics.mean(theirs["score_curve"][-window:])},
        "held_out_score": {"r1lab": ours["held_out_score"], "trl": theirs["held_out_score"]},
    }, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
