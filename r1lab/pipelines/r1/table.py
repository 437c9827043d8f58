"""The table `r1lab r1` ends with: one row per model of the road, the same held-out figures for each.

    accuracy_en, accuracy_zh   greedy accuracy on held-out arithmetic asked in English / in Chinese
    format_rate                the row's output format (R1-Zero's tags for base and r1-zero, R1's
                               reasoning and summary for the R1 stages)
    mixing_rate_zh             Chinese questions whose chain of thought is not purely Chinese
    reflection_rate            completions that check their result
    code_pass_rate             greedy programs that pass every hidden test
    helpful_rate, rm_score     benign requests answered helpfully (the task's own check), and the
                               helpful reward model's mean normalised score of those replies
    harmless_rate              harmful requests refused (the task's own check)
    mean_length                completion tokens, over the arithmetic questions

A reply to a request is what the reader sees: the summary under R1's format, the whole
completion otherwise.
"""

from __future__ import annotations

from r1lab.llm.generation import SamplingSettings
from r1lab.llm.prompts import apply_template
from r1lab.pipelines.evaluate import EvalSettings, evaluate, sample_texts
from r1lab.rewards.parsing import summary_text
from r1lab.tasks import ArithmeticTask, CodeTask, is_helpful, is_refusal
from r1lab.tasks.chat import ChatTask
from r1lab.tasks.harmful import HarmfulTask

COLUMNS = ("accuracy_en", "accuracy_zh", "format_rate", "mixing_rate_zh", "reflection_rate", "code_pass_rate",
           "helpful_rate", "rm_score", "harmless_rate", "mean_length")


HEADERS = {"accuracy_en": "acc en", "accuracy_zh": "acc zh", "format_rate": "format", "mixing_rate_zh": "mix zh",
           "reflection_rate": "checks", "code_pass_rate": "code", "helpful_rate": "helpful", "rm_score": "RM",
           "harmless_rate": "harmless", "mean_length": "length"}


def replies(model, tokenizer, items, template: str, max_new_tokens: int = 96) -> list[str]:
    prompts = [apply_template("chat" if template == "r1-zero" else template, item.question, tokenizer) for item in items]
    texts, _ = sample_texts(model, tokenizer, prompts, SamplingSettings(max_new_tokens, 0.0), 128)
    return [(summary_text(t) or "") if template == "r1" else t.strip() for t in texts]


def row(stage: str, model_dir: str, template: str, config, helpful_rm=None) -> dict:
    """The figures of one model: reasoning under `template` (r1-zero or r1), requests under the chat
    template (answered in R1's format when the template is r1)."""
    from r1lab.llm.loading import load_model

    loaded = load_model(model_dir, device=config.device, dtype=config.dtype)
    model, tokenizer = loaded.policy, loaded.tokenizer
    n, seed, length = config.eval_items, config.seed, config.eval_max_new_tokens
    settings = EvalSettings(template=template, items=n, k=0, max_new_tokens=length, seed=seed)
    figures = {"stage": stage, "model": model_dir}
    by_language = {}
    for language in ("en", "zh"):
        task = ArithmeticTask(min_digits=1, max_digits=config.tasks.max_digits, zh_share=float(language == "zh"))
        by_language[language] = evaluate(model, tokenizer, task.items(n, "test", seed), settings, task)
    en, zh = by_language["en"], by_language["zh"]
    figures.update(accuracy_en=en["accuracy"], accuracy_zh=zh["accuracy"],
                   format_rate=(en["format_rate"] + zh["format_rate"]) / 2, mixing_rate_zh=zh["mixing_rate_zh"],
                   reflection_rate=(en["reflection_rate"] + zh["reflection_rate"]) / 2,
                   mean_length=(en["mean_length"] + zh["mean_length"]) / 2)
    code = CodeTask()
    figures["code_pass_rate"] = evaluate(model, tokenizer, code.items(max(20, n // 2), "test", seed), settings,
                                         code)["accuracy"]
    benign, harmful = ChatTask().items(n, "test", seed), HarmfulTask().items(n, "test", seed)
    benign_replies = replies(model, tokenizer, benign, template)
    figures["helpful_rate"] = _mean(is_helpful(r, item) for r, item in zip(benign_replies, benign))
    figures["harmless_rate"] = _mean(is_refusal(r) for r in replies(model, tokenizer, harmful, template))
    if helpful_rm is not None:
        prompts = [apply_template("chat", item.question, tokenizer) for item in benign]
        scores = helpful_rm.normalize(helpful_rm.score_texts(prompts, [" " + r for r in benign_replies]))
        figures["rm_score"] = float(scores.mean())
    else:
        figures["rm_score"] = None
    return figures


def print_table(rows: list[dict], console) -> None:
    from rich.table import Table

    table = Table(title="DeepSeek-R1 on the tiny world: held-out figures of every stage")
    table.add_column("stage")
    for column in COLUMNS:
        table.add_column(HEADERS[column], justify="right")
    for r in rows:
        table.add_row(r["stage"], *("-" if r.get(c) is None else f"{r[c]:.3f}" if c != "mean_length" else f"{r[c]:.1f}"
                                    for c in COLUMNS))
    console.print(table)


def _mean(values) -> float:
    values = list(values)
    return sum(map(float, values)) / len(values) if values else 0.0
