"""Evaluate a pretrained tiny model and install it, with its model card, into r1lab/assets/tiny."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import torch

from r1lab.llm.generation import SamplingSettings, generate
from r1lab.llm.loading import tiny_model_path
from r1lab.pipelines.evaluate import EvalSettings, evaluate
from r1lab.rewards.parsing import last_number, mixes_languages
from r1lab.tasks import ArithmeticTask
from r1lab.tasks.corpus import documents

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja")


def base_model_evaluation(model, tokenizer, items: int = 200, seed: int = 0) -> dict:
    """What the model card records: direct and worked accuracy by digit count, the R1-Zero template
    behaviour (greedy and sampled), and how often sampled worked solutions mix languages."""
    report: dict = {"direct_accuracy": {}, "worked_accuracy": {}}
    greedy_short = SamplingSettings(max_new_tokens=12, temperature=0.0)
    greedy_long = SamplingSettings(max_new_tokens=200, temperature=0.0)
    for digits in range(1, 6):
        held_out = ArithmeticTask(min_digits=digits, max_digits=digits).items(items // 2, "test", seed)
        exprs = [f"{it.fields['a']}{it.fields['op']}{it.fields['b']}" for it in held_out]
        direct = generate(model, tokenizer, [f"Q: What is {e}?\nA:" for e in exprs], greedy_short).texts
        worked = generate(model, tokenizer, [f"{it.question} {e}:" for it, e in zip(held_out, exprs)], greedy_long).texts
        report["direct_accuracy"][digits] = _share(last_number(t) == it.answer for t, it in zip(direct, held_out))
        report["worked_accuracy"][digits] = _share(last_number(t) == it.answer for t, it in zip(worked, held_out))
    task = ArithmeticTask()
    template = evaluate(model, tokenizer, task.items(items, "test", seed), EvalSettings(
        template="r1-zero", items=items, k=4, max_new_tokens=200, seed=seed), task)
    report["r1_zero_template"] = {k: v for k, v in template.items() if k != "examples"}
    generator = torch.Generator().manual_seed(seed)
    prompts = [f"{it.question}" for it in task.items(items, "test", seed + 1)]
    samples = generate(model, tokenizer, prompts, SamplingSettings(max_new_tokens=200, temperature=1.0), generator).texts
    worked_samples = [t for t in samples if t.count("=") >= 2]
    report["worked_samples"] = len(worked_samples)
    report["worked_mixing_rate"] = _share(mixes_languages(t) for t in worked_samples)
    return report


def corpus_statistics(seed: int, count: int = 20000) -> dict:
    kinds = Counter(kind for kind, _ in itertools.islice(documents(seed), count))
    return {kind: round(n / count, 3) for kind, n in sorted(kinds.items())}


def install_tiny_model(run_dir: Path, destination: Path | None = None, quiet: bool = False) -> Path:
    """Copy RUN_DIR/model into the package's assets with a model card and its evaluation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = Path(run_dir) / "model"
    destination = Path(destination or tiny_model_path())
    destination.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, destination / name)
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(destination).eval()
    tokenizer = AutoTokenizer.from_pretrained(destination)
    report = base_model_evaluation(model, tokenizer, items=summary["config"]["eval_items"],
                                   seed=summary["config"]["seed"])
    card = {"summary": {k: v for k, v in summary.items() if k not in ("config", "model_dir")}, "config": summary["config"],
            "corpus": corpus_statistics(summary["config"]["seed"]), "evaluation": report}
    (destination / "evaluation.json").write_text(json.dumps(card, indent=2) + "\n")
    (destination / "README.md").write_text(render_card(card))
    return destination


def render_card(card: dict) -> str:
    s, c, e = card["summary"], card["config"], card["evaluation"]
    t = e["r1_zero_template"]
    rows = "\n".join(f"| {d} | {e['direct_accuracy'][d]:.2f} | {e['worked_accuracy'][d]:.2f} |" for d in e["direct_accuracy"])
    corpus = "\n".join(f"| {kind} | {share:.3f} |" for kind, share in card["corpus"].items())
    return f"""# r1lab tiny base model

A {s['parameters'] / 1e6:.2f}M-parameter Llama-style causal LM and a {c['vocab_size']}-token byte-level BPE
tokenizer, pretrained on the tiny world's synthetic corpus. Load it with
`AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`, or as `--model tiny`.

Made by `r1lab pretrain-tiny --seed {c['seed']} --install` ({s['steps']} steps of {c['batch_size']} x
{c['sequence_length']} tokens, {s['tokens_seen']:,} corpus tokens, {s['wall_seconds'] / 60:.1f} min wall time;
final training loss {s['final_loss']:.4f}). Model: hidden {c['model']['hidden_size']}, {c['model']['layers']} layers,
{c['model']['heads']} heads, MLP {c['model']['intermediate_size']}, tied embeddings.

## Corpus (share of documents)

| kind | share |
|---|---|
{corpus}

## Evaluation (held-out arithmetic, greedy)

Direct answers (`Q: What is 347+85?\\nA:`) against worked solutions (`What is 347+85? 347+85:`), both
operands of the given digit count:

| digits | direct | worked |
|---|---|---|
{rows}

Under the R1-Zero template ({t['items']} held-out questions of 1-4 digits): greedy accuracy {t['accuracy']:.3f},
answer-anywhere accuracy {t['answer_anywhere_accuracy']:.3f}, greedy format rate {t['format_rate']:.3f},
sampled format rate {t['sampled_format_rate']:.3f} (T = 1), pass@{t['k']} {t['pass_at_k']:.3f},
mean greedy length {t['mean_length']:.1f} tokens.

Sampled worked solutions that mix Chinese and English: {e['worked_mixing_rate']:.3f}
(of {e['worked_samples']} worked samples).
"""


def _share(flags) -> float:
    flags = list(flags)
    return sum(map(bool, flags)) / len(flags) if flags else 0.0
