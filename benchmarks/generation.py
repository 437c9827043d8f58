"""r1lab's sampler against `model.generate`: same model, prompts, batch and sampling settings.

    python benchmarks/generation.py [--model tiny] [--repeats 5]

Two workloads: 128 distinct held-out questions (evaluation), and 16 questions x 8 samples (a
GRPO step). Both samplers draw at temperature 1 with no top-k/top-p, stop at EOS, and run to
the same max_new_tokens. Prints JSON: the model's load time, completion tokens per second of each (median over
repeats, generation time only) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from r1lab.llm.generation import SamplingSettings, encode_prompts, generate
from r1lab.llm.loading import load_model
from r1lab.tasks import ArithmeticTask
from r1lab.tasks.templates import r1_zero_prompt


def ours(model, tokenizer, prompts, max_new_tokens, seed) -> tuple[float, int]:
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    out = generate(model, tokenizer, prompts, SamplingSettings(max_new_tokens=max_new_tokens), generator)
    return time.perf_counter() - started, int(out.lengths.sum())


def transformers_generate(model, tokenizer, prompts, max_new_tokens, seed) -> tuple[float, int]:
    torch.manual_seed(seed)
    started = time.perf_counter()
    ids, mask = encode_prompts(tokenizer, prompts, model.device)
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                         max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    seconds = time.perf_counter() - started
    completion = out[:, ids.shape[1]:]
    eos = completion == tokenizer.eos_token_id
    # tokens up to and including the first EOS; rows that never stop count every token
    lengths = torch.where(eos.any(1), eos.float().argmax(1) + 1, torch.full_like(eos[:, 0], completion.shape[1],
                                                                                dtype=torch.long))
    return seconds, int(lengths.sum())


def measure(samplers: dict, model, tokenizer, prompts, max_new_tokens, repeats) -> dict:
    """Tokens/s of each sampler, alternating them repeat by repeat so background load hits both alike."""
    rates = {name: [] for name in samplers}
    for sampler in samplers.values():
        sampler(model, tokenizer, prompts[:8], 8, 0)  # warm-up
    for seed in range(repeats):
        for name, sampler in samplers.items():
            seconds, tokens = sampler(model, tokenizer, prompts, max_new_tokens, seed)
            rates[name].append(tokens / seconds)
    return {name: {"tokens_per_second_median": statistics.median(r), "tokens_per_second": [round(x) for x in r]}
            for name, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    loaded = load_model(args.model)
    load_seconds = time.perf_counter() - started
    model, tokenizer = loaded.policy.eval(), loaded.tokenizer
    task = ArithmeticTask(max_digits=3)
    workloads = {
        "distinct_128": [r1_zero_prompt(i.question) for i in task.items(128, "test")],
        "groups_16x8": [r1_zero_prompt(i.question) for i in task.items(16, "test") for _ in range(8)],
    }
    result = {"model": args.model, "threads": args.threads, "max_new_tokens": args.max_new_tokens,
              "load_seconds": round(load_seconds, 3)}
    for name, prompts in workloads.items():
        rates = measure({"r1lab": ours, "transformers_generate": transformers_generate}, model, tokenizer, prompts,
                        args.max_new_tokens, args.repeats)
        rates["ratio"] = (rates["r1lab"]["tokens_per_second_median"]
                          / rates["transformers_generate"]["tokens_per_second_median"])
        result[name] = rates
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
