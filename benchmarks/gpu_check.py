"""The device check: does training really learn on a GPU? Prints JSON; a couple of minutes on one GPU.

Builds a Qwen2-style model of about 0.5B parameters from a config (Qwen2.5-0.5B's shape, random
weights: nothing is downloaded), saves it with the bundled tokenizer, loads it back through
`r1lab.llm.loading.load_model` in bf16 compute (fp32 master weights), and runs the real code
paths: sampling (`generate`), GRPO updates with mu = 1 and mu = 2 (`r1lab.llm.grpo.improve`) and
a few SFT steps (`train_sft`). It reports

    sampling_tokens_per_second      completion tokens sampled per second
    update_tokens_per_second        prompt + completion tokens per second through one GRPO update (mu = 1, 2)
    sft_tokens_per_second           tokens per second of SFT steps
    peak_memory_gb                  torch.cuda.max_memory_allocated over the whole check
    share_of_weights_changed        of the 2-D weights, the share that one AdamW step at lr 1e-6 changed
                                    (bf16 master weights would keep ~1 %; fp32 ones change most of them)
    logprob_gap_max / _mean         |log p| differences between the sampler and the training forward

    python benchmarks/gpu_check.py                        # on the GPU
    python benchmarks/gpu_check.py --device cpu --small   # the same code paths on a small model, on a CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

QWEN_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                num_key_value_heads=2, vocab_size=151936, max_position_embeddings=2048, tie_word_embeddings=True)
SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=512, tie_word_embeddings=True)  # vocab: the tokenizer's, added tokens included


def build_model_dir(directory: Path, shape: dict) -> int:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from r1lab.llm.loading import tiny_model_path

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path())
    shape = {"vocab_size": len(tokenizer), **shape}
    config = Qwen2Config(**shape, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def weights_of(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.dim() == 2}


def check(args) -> dict:
    from r1lab.core import group_advantages
    from r1lab.llm.generation import SamplingSettings, generate
    from r1lab.llm.grpo import Batch, improve
    from r1lab.llm.grpo_config import GRPOConfig
    from r1lab.llm.loading import load_model
    from r1lab.llm.logprobs import token_logprobs
    from r1lab.llm.prompts import apply_template
    from r1lab.llm.sft import SFTConfig, train_sft
    from r1lab.tasks import get_task

    work = Path(tempfile.mkdtemp(prefix="r1lab-gpu-check-"))
    parameters = build_model_dir(work / "model", SMALL if args.small else QWEN_05B)
    loaded = load_model(work / "model", device=args.device, dtype=args.dtype)
    policy, tokenizer, device = loaded.policy, loaded.tokenizer, loaded.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    items = get_task("arithmetic").items(args.prompts, "train")
    prompts = [apply_template("r1-zero", item.question) for item in items for _ in range(args.group_size)]
    sampling = SamplingSettings(max_new_tokens=args.max_new_tokens)
    generator = torch.Generator(device=device).manual_seed(0)
    generate(policy, tokenizer, prompts[: args.group_size], SamplingSettings(max_new_tokens=4), generator)  # warm-up
    synchronize(device)
    started = time.perf_counter()
    completions = generate(policy, tokenizer, prompts, sampling, generator)
    synchronize(device)
    sampling_seconds = time.perf_counter() - started
    sampled_tokens = int(completions.lengths.sum())

    c = completions
    with torch.no_grad():
        training, _ = token_logprobs(policy, c.prompt_ids, c.prompt_mask, c.completion_ids, c.completion_mask,
                                     chunk_size=args.micro_batch)
    gap = ((training - c.logprobs).abs() * c.completion_mask)
    rewards = torch.arange(len(prompts), dtype=torch.float32) % 3  # made-up rewards with variance in every group
    batch = Batch(items, prompts, c, rewards, group_advantages(rewards, args.group_size))
    step_tokens = int(c.prompt_mask.sum() + c.completion_mask.sum())

    result: dict = {"device": str(device), "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    "torch": torch.__version__, "compute_dtype": str(loaded.dtype), "parameters": parameters,
                    "completions": len(prompts), "sampled_tokens": sampled_tokens,
                    "sampling_tokens_per_second": sampled_tokens / sampling_seconds,
                    "logprob_gap_max": float(gap.max()), "logprob_gap_mean": float(gap.sum() / c.completion_mask.sum()),
                    "update_tokens_per_second": {}}
    for mu in (1, 2):
        config = GRPOConfig(num_iterations=mu, micro_batch_size=args.micro_batch, max_new_tokens=args.max_new_tokens,
                            lr=1e-6, max_grad_norm=1e9)
        optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6, weight_decay=0.0)
        before = weights_of(policy) if mu == 1 else None
        synchronize(device)
        started = time.perf_counter()
        improve(policy, None, optimizer, batch, config)
        synchronize(device)
        result["update_tokens_per_second"][f"mu={mu}"] = mu * step_tokens / (time.perf_counter() - started)
        if before is not None:
            after = weights_of(policy)
            changed = sum(int((after[n] != w).sum()) for n, w in before.items())
            result["share_of_weights_changed"] = changed / sum(w.numel() for w in before.values())
            del before, after
        del optimizer

    data = work / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": apply_template("r1-zero", it.question),
                                        "completion": f" <think> {it.solution} </think> <answer> {it.answer} </answer>"})
                            + "\n" for it in get_task("arithmetic").items(args.sft_steps * args.micro_batch, "train")))
    del loaded, policy, batch, completions, c
    sft = train_sft(SFTConfig(model=str(work / "model"), data=str(data), max_steps=args.sft_steps,
                              batch_size=args.micro_batch, eval_share=0.0, device=args.device, dtype=args.dtype,
                              save_model=False, checkpoint_every=10**6), work / "sft", quiet=True)
    metrics = [json.loads(line) for line in (work / "sft" / "metrics.jsonl").read_text().splitlines()]
    timed = metrics[1:]  # the first step pays for warm-up
    result["sft_tokens_per_second"] = (sum(m["tokens"] for m in timed) / sum(m["step_seconds"] for m in timed)
                                       if timed else None)
    result["sft_loss_first_last"] = [metrics[0]["loss"], sft["loss_last"]]
    if device.type == "cuda":
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cuda (default when there is one) or cpu")
    parser.add_argument("--dtype", default="bfloat16", help="the compute dtype (weights stay fp32)")
    parser.add_argument("--small", action="store_true", help="a small model instead of the 0.5B shape")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--sft-steps", type=int, default=4)
    args = parser.parse_args(argv)
    result = check(args)
    json.dump(result, sys.stdout, indent=2)
    print()
    return result


if __name__ == "__main__":
    main()
