"""Rejection sampling (stage 3, and the distillation data of stage 5).

Reasoning data: k samples per prompt from the model. A sample is correct when the task's rule
verifier says so; where a task has no rule verifier, the generative judge decides, given the
ground truth (the base model prompted with `r1lab.tasks.judge.judge_prompt`, as DeepSeek
prompted DeepSeek-V3). The judge also runs where the rule does, so that their agreement is a
measured figure; the rule's verdict always wins there, so no sample is kept by the judge alone
when the rule says wrong. Correct samples then pass the readability filters (`data.unreadable`).

Non-reasoning data, two parts, as DeepSeek's: k answers per request from the model, the best by
the helpful reward model kept when the reward model prefers it to the request's rejected reply
(for harmful requests, when the harmless reward model prefers it to compliance); and curated
requests with the world's reference reply in R1's format (`data.general_response`), the part
DeepSeek took from DeepSeek-V3's own SFT data ("we adopt the DeepSeek-V3 pipeline and reuse
portions of the SFT dataset of DeepSeek-V3"). The reward model alone picks replies that name
the wrong person or thing too often for the tiny model to learn its requests from them.
"""

from __future__ import annotations

from collections import Counter

import torch

from r1lab.llm.generation import SamplingSettings
from r1lab.llm.prompts import apply_template
from r1lab.pipelines.evaluate import sample_texts
from r1lab.pipelines.r1 import data
from r1lab.pipelines.r1.rewards import verified_reward
from r1lab.rewards.parsing import summary_text
from r1lab.tasks.judge import judge_prompt, parse_verdict

JUDGED_TASKS = ("arithmetic", "countdown")  # tasks whose ground truth a judge can compare an answer with


def request_task(item) -> str:
    """The `task` tag of a request's SFT row: "harmful" or "general"."""
    return "harmful" if item.fields.get("harmful") else "general"


def has_rule_verifier(item) -> bool:
    return item.task.startswith("arithmetic") or item.task in ("countdown", "code")


def samples(model, tokenizer, items, k: int, max_new_tokens: int, seed: int, template: str = "r1",
            temperature: float = 1.0):
    """k sampled completions per item: (the item of each, the completions)."""
    repeated = [item for item in items for _ in range(k)]
    prompts = [apply_template(template, item.question, tokenizer) for item in repeated]
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    texts, _ = sample_texts(model, tokenizer, prompts, SamplingSettings(max_new_tokens, temperature), 128, generator)
    return repeated, prompts, texts


def rule_verdicts(prompts, items, completions) -> list[float | None]:
    fields = {"task": [i.task for i in items], "answer": [i.answer for i in items],
              "numbers": [i.fields.get("numbers") for i in items], "target": [i.fields.get("target") for i in items],
              "tests": [i.fields.get("tests") for i in items]}
    return [None if not has_rule_verifier(item) else v
            for v, item in zip(verified_reward(prompts, completions, **fields), items)]


def judge_verdicts(judge, tokenizer, items, completions, batch_size: int = 64) -> list[bool | None]:
    """The generative judge's verdict (greedy) on each completion it can judge; None elsewhere."""
    rows = [i for i, item in enumerate(items) if item.task.startswith(JUDGED_TASKS)]
    verdicts: list[bool | None] = [None] * len(items)
    if rows:
        prompts = [judge_prompt(items[i].question, items[i].answer, completions[i]) for i in rows]
        texts, _ = sample_texts(judge, tokenizer, prompts, SamplingSettings(24, 0.0), batch_size)
        for i, text in zip(rows, texts):
            verdicts[i] = parse_verdict(text)
    return verdicts


def keep_reasoning(items, completions, rules, judges, max_paragraph_chars: int, per_prompt: int = 2):
    """The correct, readable samples (at most `per_prompt` distinct ones per prompt), and the counts."""
    kept, removed, seen = [], Counter(), Counter()
    decided = Counter()
    both = [(r, j) for r, j in zip(rules, judges) if r is not None and j is not None]
    for item, completion, rule, judge in zip(items, completions, rules, judges):
        if rule is not None:
            decided["rule"] += 1
            correct = rule == 1.0  # where the rule speaks, it decides: the judge alone never overrules it
        elif judge is not None:
            decided["judge"] += 1
            correct = judge
        else:
            decided["undecided"] += 1
            correct = False
        if not correct:
            removed["incorrect"] += 1
            continue
        reason = data.unreadable(completion, item, max_paragraph_chars)
        if reason:
            removed[reason] += 1
            continue
        key = (item.question, completion)
        if seen[item.question] >= per_prompt or key in seen:
            removed["duplicate_or_enough"] += 1
            continue
        seen[item.question] += 1
        seen[key] += 1
        kept.append({"prompt": item.question, "completion": completion, "task": item.task})
    agreement = sum((r == 1.0) == j for r, j in both) / len(both) if both else None
    stats = {"samples": len(items), "kept": len(kept), "removed": dict(removed), "decided_by": dict(decided),
             "judge_rule_agreement": agreement, "judged_with_rule": len(both),
             "kept_by_judge_against_rule": 0}
    return kept, stats


def keep_best_replies(model, tokenizer, items, k: int, max_new_tokens: int, seed: int, helpful_rm, harmless_rm,
                      temperature: float = 1.0):
    """For each request, the sample the right reward model scores best, kept when that model
    prefers it to the request's rejected reply; returns the rows and the counts."""
    repeated, prompts, texts = samples(model, tokenizer, items, k, max_new_tokens, seed, temperature=temperature)
    kept, removed = [], Counter()
    for start in range(0, len(items)):
        item = items[start]
        rows = range(start * k, (start + 1) * k)
        reward_model = harmless_rm if item.fields.get("harmful") else helpful_rm
        readable = [i for i in rows if not data.no_summary(texts[i]) and not data.mixed_language(texts[i], "en")]
        removed["unreadable"] += k - len(readable)
        if not readable:
            continue
        replies = [summary_text(texts[i]) for i in readable]
        scores = reward_model.score_texts([prompts[i] for i in readable] + [prompts[readable[0]]],
                                          [" " + r for r in replies] + [" " + item.fields["rejected"]])
        best = int(torch.as_tensor(scores[:-1]).argmax())
        if float(scores[best]) <= float(scores[-1]):
            removed["not_preferred"] += 1
            continue
        kept.append({"prompt": item.question, "completion": texts[readable[best]],
                     "task": request_task(item)})
    return kept, {"requests": len(items), "kept": len(kept), "removed": dict(removed)}


def rejection_sample(config, model_dir: str, helpful_model: str, harmless_model: str, settings,
                     harmful_share: float = 0.0) -> tuple[list[dict], dict]:
    """Stage 3's SFT data from the model in `model_dir` (see the module docstring)."""
    from r1lab.llm.loading import load_model
    from r1lab.llm.reward_model import load_reward_model

    loaded = load_model(model_dir, device=config.device, dtype=config.dtype)
    judge = load_model(config.model, device=config.device, dtype=config.dtype).policy  # the base model as judge
    model, tokenizer = loaded.policy, loaded.tokenizer
    model.eval()
    items = data.reasoning_items(config.tasks, settings.prompts, "train", config.seed + 1)
    repeated, prompts, completions = samples(model, tokenizer, items, settings.samples_per_prompt,
                                             config.reasoning_rl.max_new_tokens, config.seed,
                                             temperature=settings.temperature)
    rules = rule_verdicts(prompts, repeated, completions)
    judges = judge_verdicts(judge, tokenizer, repeated, completions)
    reasoning, reasoning_stats = keep_reasoning(repeated, completions, rules, judges, settings.max_paragraph_chars)
    helpful_rm = load_reward_model(helpful_model, device=config.device, dtype=config.dtype)
    harmless_rm = load_reward_model(harmless_model, device=config.device, dtype=config.dtype)
    requests = data.general_items(settings.general_prompts, "train", config.seed + 1, harmful_share=harmful_share)
    general, general_stats = keep_best_replies(model, tokenizer, requests, settings.general_samples_per_prompt, 96,
                                               config.seed + 1, helpful_rm, harmless_rm, settings.temperature)
    curated = [{"prompt": item.question, "completion": data.general_response(item),
                "task": request_task(item)}
               for item in data.general_items(settings.curated_general, "train", config.seed + 2,
                                              harmful_share=harmful_share)]
    pairs = reasoning + general + curated
    return pairs, {"reasoning": reasoning_stats, "general": general_stats, "curated_general": len(curated),
                   "pairs": len(pairs)}
