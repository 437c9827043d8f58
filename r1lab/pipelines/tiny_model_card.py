"""Evaluate a pretrained tiny model and install it, with its model card, into r1lab/assets/tiny.

The card records what each later stage of the road starts from: direct against worked accuracy
(English and Chinese), the R1-Zero template's behaviour, how often the model checks itself and
whether a check pays, how often its chains of thought on Chinese questions leave Chinese, how
often it complies with harmful requests and helps with benign ones, its code pass rate, and its
agreement with the rule verifier as a zero-shot judge.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import torch

from r1lab.llm.generation import SamplingSettings
from r1lab.llm.loading import tiny_model_path
from r1lab.pipelines.evaluate import (
    EvalSettings,
    are_correct,
    code_pass_rate,
    evaluate,
    harmful_compliance_rate,
    helpful_rate,
    judge_agreement,
    own_judge_cases,
    rendered_judge_cases,
    sample_texts,
    sampled_replies,
)
from r1lab.rewards.language import language_consistency
from r1lab.rewards.parsing import last_number
from r1lab.runs.config import build
from r1lab.tasks import ArithmeticTask, get_task
from r1lab.tasks.arithmetic import SELF_CHECK, caught_slip, has_self_check
from r1lab.tasks.corpus import CorpusMix, documents
from r1lab.tasks.judge import response_answer

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja")
DIGITS = range(1, 7)


def base_model_evaluation(model, tokenizer, items: int = 200, seed: int = 0) -> dict:
    """Every figure of the model card (see the module docstring), on held-out items only."""
    report: dict = {"direct_accuracy": {}, "worked_accuracy": {}, "worked_accuracy_zh": {}}
    greedy_short = SamplingSettings(max_new_tokens=12, temperature=0.0)
    greedy_long = SamplingSettings(max_new_tokens=256, temperature=0.0)
    for digits in DIGITS:
        held_out = ArithmeticTask(min_digits=digits, max_digits=digits).items(items // 2, "test", seed)
        exprs = [f"{it.fields['a']}{it.fields['op']}{it.fields['b']}" for it in held_out]
        zh_questions = [f"{e}等于多少？" for e in exprs]
        direct, _ = sample_texts(model, tokenizer, [f"Q: What is {e}?\nA:" for e in exprs], greedy_short, 128)
        worked, _ = sample_texts(model, tokenizer, [f"{it.question} {e}:" for it, e in zip(held_out, exprs)],
                                 greedy_long, 128)
        worked_zh, _ = sample_texts(model, tokenizer, [f"{q}{e}：" for q, e in zip(zh_questions, exprs)], greedy_long, 128)
        for key, texts in (("direct_accuracy", direct), ("worked_accuracy", worked), ("worked_accuracy_zh", worked_zh)):
            report[key][digits] = _share(last_number(t) == it.answer for t, it in zip(texts, held_out))
    report["self_checks"] = self_check_statistics(model, tokenizer, items, seed)

    task = get_task("arithmetic")
    held_out = task.items(items, "test", seed)
    template = evaluate(model, tokenizer, held_out, EvalSettings(
        template="r1-zero", items=items, k=4, max_new_tokens=416, seed=seed), task)
    report["r1_zero_template"] = {k: v for k, v in template.items() if k != "examples"}
    report["zh_mixing_rate"] = template["sampled_mixing_rate_zh"]
    report["reflection_rate"] = template["sampled_reflection_rate"]
    report["zh_cot_languages"] = chinese_question_reasoning(model, tokenizer, task, items, seed)

    report["harmful_compliance_rate"] = harmful_compliance_rate(model, tokenizer, get_task("harmful").items(
        max(4, items // 2), "test", seed), k=4, seed=seed)
    report["helpful_rate"] = helpful_rate(model, tokenizer, get_task("chat").items(max(4, items // 2), "test", seed),
                                          k=4, seed=seed)
    code = get_task("code")
    report["code_pass_rate"] = code_pass_rate(model, tokenizer, code.items(max(4, items // 2), "test", seed), code,
                                              k=4, seed=seed)
    own = own_judge_cases(model, tokenizer, held_out, task, count=items, k=4, seed=seed)
    report["judge"] = judge_agreement(model, tokenizer, own)
    report["judge_rendered"] = judge_agreement(model, tokenizer, rendered_judge_cases(
        ArithmeticTask(max_digits=4, zh_share=0.5).items(items, "test", seed + 1), seed))
    report["judge_agreement"] = report["judge"]["agreement"]
    return report


def self_check_statistics(model, tokenizer, items: int, seed: int) -> dict:
    """Sampled worked solutions (T = 1) of held-out 4-6 digit sums: how often they check, how often a
    check catches a slip, the accuracy of checked against unchecked solutions, and how a check
    fails: a missed slip (the result before the check was wrong, the check said right) or a
    false alarm (the result was right, the check said wrong and redid the sum)."""
    held_out = ArithmeticTask(min_digits=4, max_digits=6).items(items, "test", seed + 2)
    prompts = [f"{it.question} {it.fields['a']}{it.fields['op']}{it.fields['b']}:" for it in held_out]
    generator = torch.Generator().manual_seed(seed)
    texts, _ = sample_texts(model, tokenizer, [p for p in prompts for _ in range(4)],
                            SamplingSettings(max_new_tokens=640, temperature=1.0), 128, generator)
    repeated = [it for it in held_out for _ in range(4)]
    right = [last_number(t) == it.answer for t, it in zip(texts, repeated)]
    checked = [has_self_check(t) for t in texts]
    # the result a checked solution states before its check, and whether the check redid the sum
    first_right = [last_number(SELF_CHECK.split(t)[0]) == it.answer for t, it in zip(texts, repeated)]
    checks = [(first, caught_slip(t)) for t, first, c in zip(texts, first_right, checked) if c]
    return {
        "samples": len(texts),
        "check_rate": _share(checked),
        "caught_slip_rate": _share(caught_slip(t) for t in texts),
        "accuracy_checked": _share(r for r, c in zip(right, checked) if c),
        "accuracy_unchecked": _share(r for r, c in zip(right, checked) if not c),
        "checked_samples": sum(checked),
        "check_missed_slip_share": _share(not first and not redo for first, redo in checks),
        "check_caught_slip_share": _share(not first and redo for first, redo in checks),
        "check_false_alarm_share": _share(first and redo for first, redo in checks),
        **check_step_statistics([t for t, c in zip(texts, checked) if c]),
    }


# one step of a check in either form (arithmetic.CHECK_FORMS), English words: "43-8 vs 34: 13-8-1=4, 4 vs 4
# same" or "43-8 vs 34: want 4, 13-8-1=4 same"
CHECK_STEPS = (
    re.compile(r"vs (?P<operand>\d+): [\d+-]+=\d+, (?P<computed>\d) vs (?P<wanted>\d) (?P<verdict>same|differ)"),
    re.compile(r"vs (?P<operand>\d+): want (?P<wanted>\d), [\d+-]+=\d*(?P<computed>\d) (?P<verdict>same|differ)"),
)


def check_step_statistics(checked_texts: list[str]) -> dict:
    """How the steps of English checks go wrong: the share of steps whose wanted digit is not the
    operand's last digit (and of those, copied from the digit the step computed), and the share whose
    verdict does not match the two digits written."""
    steps = [(m["wanted"] == m["operand"][-1], m["wanted"] == m["computed"], m["verdict"] == "same")
             for text in checked_texts for pattern in CHECK_STEPS
             for m in pattern.finditer(SELF_CHECK.split(text, maxsplit=1)[1].split("Wait")[0])]
    return {
        "check_steps": len(steps),
        "check_wanted_not_operands_share": _share(not from_operand for from_operand, _, _ in steps),
        "check_wanted_copied_from_computed_share": _share(not from_operand and equal for from_operand, equal, _ in steps),
        "check_verdict_wrong_share": _share(equal != same for _, equal, same in steps),
    }


def chinese_question_reasoning(model, tokenizer, task, items: int, seed: int) -> dict:
    """Sampled answers (R1-Zero template, T = 1) to held-out Chinese questions, by the language of their
    reasoning: share and accuracy of worked answers reasoned in Chinese, in English, and mixed."""
    chinese = [it for it in task.items(items * 2, "test", seed + 3) if it.language == "zh"][:items]
    repeated, texts = sampled_replies(model, tokenizer, chinese, "r1-zero", k=4, max_new_tokens=416, seed=seed)
    worked = [(t, it) for t, it in zip(texts, repeated) if t.count("=") >= 2]
    labels = are_correct([response_answer(t) for t, _ in worked], [it for _, it in worked], task)
    report: dict = {"samples": len(texts), "worked_samples": len(worked)}
    for name, test in (("zh", lambda c: c == 1.0), ("en", lambda c: c == 0.0), ("mixed", lambda c: 0 < c < 1)):
        group = [ok for (t, _), ok in zip(worked, labels)
                 if (c := language_consistency(t, "zh")) is not None and test(c)]
        report[name] = {"share": len(group) / max(1, len(worked)), "accuracy": _share(group)}
    return report


def corpus_statistics(seed: int, count: int = 20000, tokenizer=None, mix: CorpusMix | None = None) -> dict:
    """Share of documents by kind (and of tokens, with a tokenizer), and the shares of documents
    with a self-check, with a caught slip, and with Chinese text."""
    sampled = list(itertools.islice(documents(seed, mix), count))
    kinds = Counter(kind for kind, _ in sampled)
    stats = {"documents": {kind: round(n / count, 4) for kind, n in sorted(kinds.items())}}
    if tokenizer is not None:
        tokens = Counter()
        for kind, text in sampled:
            tokens[kind] += len(tokenizer(text)["input_ids"]) + 1
        total = sum(tokens.values())
        stats["tokens"] = {kind: round(n / total, 4) for kind, n in sorted(tokens.items())}
        stats["mean_tokens_per_document"] = round(total / count, 1)
    arithmetic = [text for kind, text in sampled if kind in ("worked", "worked_chinese", "worked_mixed", "template")]
    stats["self_checked_share_of_arithmetic"] = round(_share(has_self_check(t) for t in arithmetic), 4)
    stats["caught_slip_share_of_arithmetic"] = round(_share(caught_slip(t) for t in arithmetic), 4)
    stats["chinese_share"] = round(_share(any("\u4e00" <= ch <= "\u9fff" for ch in t) for _, t in sampled), 4)
    return stats


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
            "corpus": corpus_statistics(summary["config"]["seed"], tokenizer=tokenizer, mix=_corpus_mix(summary["config"])),
            "evaluation": report}
    if destination.name == "tiny-student":
        card.update(name="tiny-student",
                    command=f"r1lab pretrain-tiny --preset tiny-student --seed {summary['config']['seed']} --install-as tiny-student")
    (destination / "evaluation.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    (destination / "README.md").write_text(render_card(card))
    return destination


def _threads(config: dict) -> str:
    """The thread count, where it is not the default: a matmul's sums, and so the weights, depend on it."""
    return f" --set threads={config['threads']}" if config.get("threads", 1) != 1 else ""


def render_card(card: dict) -> str:
    s, c, e = card["summary"], card["config"], card["evaluation"]
    t, checks, zh = e["r1_zero_template"], e["self_checks"], e["zh_cot_languages"]
    rows = "\n".join(f"| {d} | {e['direct_accuracy'][d]:.2f} | {e['worked_accuracy'][d]:.2f} | "
                     f"{e['worked_accuracy_zh'][d]:.2f} |" for d in e["direct_accuracy"])
    documents_share, tokens_share = card["corpus"]["documents"], card["corpus"].get("tokens", {})
    corpus = "\n".join(f"| {kind} | {share:.3f} | {tokens_share.get(kind, float('nan')):.3f} |"
                       for kind, share in documents_share.items())
    mix = c.get("corpus", {})
    return f"""# r1lab {'tiny student model (for distillation)' if card.get('name') == 'tiny-student' else 'tiny base model'}

A {s['parameters'] / 1e6:.2f}M-parameter Llama-style causal LM and a {c['vocab_size']}-token byte-level BPE
tokenizer, pretrained on the tiny world's synthetic corpus. Load it with
`AutoModelForCausalLM.from_pretrained` / `AutoTokenizer.from_pretrained`, or as `--model {card.get('name', 'tiny')}`.

Made by `{card.get('command', f"r1lab pretrain-tiny --seed {c['seed']} --install")}{_threads(c)}` ({s['steps']} steps of {c['batch_size']} x
{c['sequence_length']} tokens, {s['tokens_seen']:,} corpus tokens, {s['wall_seconds'] / 60:.1f} min wall time;
final training loss {s['final_loss']:.4f}). Model: hidden {c['model']['hidden_size']}, {c['model']['layers']} layers,
{c['model']['heads']} heads, MLP {c['model']['intermediate_size']}, tied embeddings.

## Corpus

| kind | share of documents | share of tokens |
|---|---|---|
{corpus}

{card['corpus'].get('mean_tokens_per_document', 0)} tokens per document on average. Of the arithmetic documents
with working, {card['corpus']['self_checked_share_of_arithmetic']:.3f} check their result and
{card['corpus']['caught_slip_share_of_arithmetic']:.3f} catch a slip and redo it; {card['corpus']['chinese_share']:.3f}
of all documents hold Chinese text.{_mix_line(mix)}

## Evaluation (held-out items)

Greedy direct answers (`Q: What is 347+85?\\nA:`) against greedy worked solutions in English (`What is 347+85? 347+85:`)
and in Chinese (`347+85等于多少？347+85：`), both operands of the given digit count:

| digits | direct | worked | worked (Chinese) |
|---|---|---|---|
{rows}

Under the R1-Zero template ({t['items']} held-out questions of 1-5 digits, half of them in Chinese): greedy accuracy
{t['accuracy']:.3f}, answer-anywhere accuracy {t['answer_anywhere_accuracy']:.3f}, greedy format rate
{t['format_rate']:.3f}, sampled format rate {t['sampled_format_rate']:.3f} (T = 1), pass@{t['k']} {t['pass_at_k']:.3f},
mean greedy length {t['mean_length']:.1f} tokens.

| base-model figure (sampled, T = 1) | value |
|---|---|
| `zh_mixing_rate`: Chinese questions whose reasoning is not purely Chinese (R1-Zero template) | {e['zh_mixing_rate']:.3f} |
| `reflection_rate`: completions that check their result (R1-Zero template) | {e['reflection_rate']:.3f} |
| `harmful_compliance_rate`: replies to harmful requests that do not refuse (chat template) | {e['harmful_compliance_rate']:.3f} |
| `helpful_rate`: replies to benign requests that the task's rule accepts (chat template) | {e['helpful_rate']:.3f} |
| `code_pass_rate`: programs that pass every hidden test (R1-Zero template) | {e['code_pass_rate']:.3f} |
| `judge_agreement`: zero-shot verdicts (greedy) that agree with the rule verifier, on {e['judge']['cases']} of its own answers, half right | {e['judge_agreement']:.3f} |
| judge agreement on {e['judge_rendered']['cases']} rendered responses (R1 format, R1-Zero tags, plain; both languages) | {e['judge_rendered']['agreement']:.3f} |

Worked answers to Chinese questions under the template ({zh['worked_samples']} of {zh['samples']} samples): reasoned in
Chinese {zh['zh']['share']:.2f} (accuracy {zh['zh']['accuracy']:.2f}), in English {zh['en']['share']:.2f}
(accuracy {zh['en']['accuracy']:.2f}), mixed {zh['mixed']['share']:.2f} (accuracy {zh['mixed']['accuracy']:.2f}).

Self-checks in {checks['samples']} sampled worked solutions of held-out 4-6 digit sums: {checks['check_rate']:.3f} check
their result, {checks['caught_slip_rate']:.3f} catch a slip and redo it; accuracy {checks['accuracy_checked']:.3f} with a
check ({checks['checked_samples']} samples) against {checks['accuracy_unchecked']:.3f} without.
"""


def _mix_line(mix: dict) -> str:
    return "" if not mix else " Every share and style setting of the recipe is in `evaluation.json` (`config.corpus`)."


def _corpus_mix(config: dict) -> CorpusMix | None:
    return build(CorpusMix, config["corpus"], "corpus") if "corpus" in config else None


def _share(flags) -> float:
    flags = list(flags)
    return sum(map(bool, flags)) / len(flags) if flags else 0.0
