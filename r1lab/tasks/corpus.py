"""The pretraining corpus of the tiny world, built so that every later stage has real work to do.

A stream of short documents, deterministic from a seed, drawn from train-split items only:

- direct answers ("347+85=432"): the facts, which a small model gets right on short numbers
  and often wrong on long ones (the first digit depends on every carry);
- worked solutions after a question (see `arithmetic.worked_solution`): longer, and far more
  accurate on long numbers, so RL can discover that thinking pays. Some check their result by
  the inverse operation, more often on long numbers; in a share of those the first attempt
  slips, the check catches it and the solution redoes the sum ("Wait, redo"). Slips are put
  only into checked solutions, so the corpus never teaches a wrong conclusion;
- worked solutions in Chinese after Chinese questions (fewer than in English, so the model
  reasons a little less well in Chinese), and some mixing the two languages;
- the R1-Zero template in a minority of documents, with English and Chinese questions, answered
  in every style (mostly a plain sentence, sometimes the tags), so the base model follows the
  format sometimes but not reliably; a Chinese question is answered in Chinese, in English or
  mixed, so the question's language is kept in some samples and not in others;
- countdown puzzles; benign requests answered well or badly and harmful requests refused or
  complied with (preference data for a helpful and a harmless reward model); judge documents
  (question, reference, response, verdict); and requests for short Python functions answered
  with right and wrong programs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from r1lab.tasks.arithmetic import CHECK_FORMS, ArithmeticTask, Slip, worked_solution
from r1lab.tasks.chat import ChatTask
from r1lab.tasks.code import KINDS as CODE_KINDS
from r1lab.tasks.code import CodeTask, plan_text, program_text
from r1lab.tasks.countdown import CountdownTask
from r1lab.tasks.harmful import HarmfulTask
from r1lab.tasks.judge import JudgeTask
from r1lab.tasks.templates import answer_sentence, r1_zero_prompt, tagged_response

DOCUMENT_KINDS = ("direct", "worked", "worked_chinese", "worked_mixed", "template", "countdown", "chat", "harmful",
                  "judge", "code")
# functions the corpus mostly gets wrong (a typical bug is more common than the right body), as
# code found in the wild often is: the base model's greedy program fails there, and RL can fix it
CODE_UNRELIABLE = ("larger", "smaller", "subtract", "last", "absolute", "is_even", "count_of", "sum_list", "join")


@dataclass(frozen=True)
class CorpusMix:
    """Shares of each document kind (normalised), and the styles within kinds."""

    direct: float = 0.14
    worked: float = 0.18
    worked_chinese: float = 0.07
    worked_mixed: float = 0.03
    template: float = 0.17
    countdown: float = 0.02
    chat: float = 0.18
    harmful: float = 0.06
    judge: float = 0.07
    code: float = 0.08
    # answer styles of template documents (the same for English and Chinese questions)
    template_plain: float = 0.78
    template_worked_untagged: float = 0.06
    template_tagged_worked: float = 0.10
    template_tagged_direct: float = 0.02
    template_tagged_mixed: float = 0.04  # tagged, worked in Chinese or mixed (English questions)
    # template documents with a Chinese question: the language of the answer
    template_zh_share: float = 0.4
    zh_plain_in_chinese: float = 0.6  # a plain answer "答案是432。", else "The answer is 432."
    zh_worked_in_chinese: float = 0.45  # a worked answer in Chinese, else English (0.35) or mixed (0.2)
    zh_worked_in_english: float = 0.35
    direct_zh_share: float = 0.25
    # self-checks: the probability that a worked solution checks itself, by the longer operand's digits
    check_by_digits: tuple[float, ...] = (0.0, 0.0, 0.03, 0.06, 0.10, 0.12)
    slip_in_check: float = 0.3  # checked solutions whose first attempt slips (the check catches it)
    check_form: str = "computed_first"  # how a check step is written (arithmetic.CHECK_FORMS)
    hard_share: float = 0.15  # direct and worked documents on 5-6 digit operands
    chat_rejected: float = 0.3
    harmful_compliance: float = 0.55
    code_right_reliable: float = 0.75
    code_right_unreliable: float = 0.35
    chat_template_share: float = 0.7  # requests as "User: ...\nAssistant: ...", else "Q: ...\nA: ..."
    arithmetic: ArithmeticTask = field(default_factory=lambda: ArithmeticTask(min_digits=1, max_digits=5))
    hard: ArithmeticTask = field(default_factory=lambda: ArithmeticTask(min_digits=5, max_digits=6))

    def __post_init__(self):
        if self.check_form not in CHECK_FORMS:
            raise ValueError(f"corpus: check_form must be one of {', '.join(CHECK_FORMS)}, got {self.check_form!r}")


def documents(seed: int, mix: CorpusMix | None = None) -> Iterator[tuple[str, str]]:
    """An endless, seeded stream of (kind, text) documents."""
    mix = mix or CorpusMix()
    rng = random.Random(f"corpus-{seed}")
    weights = [getattr(mix, k) for k in DOCUMENT_KINDS]
    countdown, chat, harmful, code = CountdownTask(), ChatTask(), HarmfulTask(), CodeTask()
    judge = JudgeTask(check_form=mix.check_form)
    while True:
        kind = rng.choices(DOCUMENT_KINDS, weights)[0]
        if kind == "countdown":
            yield kind, _countdown_document(rng, countdown)
        elif kind == "chat":
            yield kind, _request_document(rng, chat.sample(rng, "train"), mix.chat_rejected, mix)
        elif kind == "harmful":
            yield kind, _request_document(rng, harmful.sample(rng, "train"), mix.harmful_compliance, mix)
        elif kind == "judge":
            item = judge.sample(rng, "train")
            yield kind, item.question + item.solution
        elif kind == "code":
            yield kind, _code_document(rng, code, mix)
        else:
            yield kind, _arithmetic_document(rng, kind, mix)


def corpus_solution(rng: random.Random, a: int, op: str, b: int, language: str, mix: CorpusMix) -> str:
    """A worked solution as the corpus writes it: checked with the digits' probability, and in a
    checked one the first attempt slips with probability `slip_in_check`."""
    digits = max(len(str(a)), len(str(b)))
    check = rng.random() < mix.check_by_digits[min(digits, len(mix.check_by_digits)) - 1]
    slip = None
    if check and rng.random() < mix.slip_in_check:
        slip = Slip(rng.randrange(digits), rng.choice([-1, 1]), rng.choice(["sum", "copy"]))
    return worked_solution(a, op, b, language, check=check, slip=slip, check_form=mix.check_form)


def _arithmetic_document(rng: random.Random, kind: str, mix: CorpusMix) -> str:
    task = mix.hard if kind != "template" and rng.random() < mix.hard_share else mix.arithmetic
    if kind == "template":
        language = "zh" if rng.random() < mix.template_zh_share else "en"
    elif kind == "worked_chinese":
        language = "zh"
    elif kind == "direct":
        language = "zh" if rng.random() < mix.direct_zh_share else "en"
    else:
        language = "en" if kind == "worked" or rng.random() < 0.7 else "zh"
    item = task.sample(rng, "train", language=language)
    a, op, b = item.fields["a"], item.fields["op"], item.fields["b"]
    if kind == "direct":
        return _direct(rng, item, a, op, b)
    if kind == "worked":
        return f"{item.question} {corpus_solution(rng, a, op, b, 'en', mix)}"
    if kind == "worked_chinese":
        return f"{item.question}{corpus_solution(rng, a, op, b, 'zh', mix)}"
    if kind == "worked_mixed":
        return f"{item.question} {corpus_solution(rng, a, op, b, 'mixed', mix)}"
    return _template_document(rng, item, a, op, b, mix)


def _direct(rng: random.Random, item, a: int, op: str, b: int) -> str:
    form = rng.randrange(4)
    if form == 0:
        return f"{a}{op}{b}={item.answer}"
    if item.language == "zh":
        return [f"{item.question}{item.answer}", f"问：{item.question}\n答：{item.answer}",
                f"{item.question}{answer_sentence(item.answer, 'zh')}"][form - 1]
    return [f"{item.question} {item.answer}", f"Q: {item.question}\nA: {item.answer}",
            f"{item.question} {answer_sentence(item.answer)}"][form - 1]


def _template_document(rng: random.Random, item, a: int, op: str, b: int, mix: CorpusMix) -> str:
    styles = ["plain", "worked_untagged", "tagged_worked", "tagged_direct", "tagged_mixed"]
    style = rng.choices(styles, [getattr(mix, f"template_{s}") for s in styles])[0]
    prompt = r1_zero_prompt(item.question)
    if item.language == "zh":
        plain_language = "zh" if rng.random() < mix.zh_plain_in_chinese else "en"
        roll = rng.random()
        cot = "zh" if roll < mix.zh_worked_in_chinese else "en" if roll < mix.zh_worked_in_chinese + mix.zh_worked_in_english else "mixed"
    else:
        plain_language, cot = "en", "en"
        if style == "tagged_mixed":
            cot = rng.choice(["zh", "mixed"])
    if style == "plain":
        return f"{prompt} {answer_sentence(item.answer, plain_language)}"
    if style == "tagged_direct":
        return prompt + tagged_response(f"{a}{op}{b}={item.answer}", item.answer)
    solution = corpus_solution(rng, a, op, b, cot, mix)
    if style == "worked_untagged":
        return f"{prompt} {solution}"
    return prompt + tagged_response(solution, item.answer)


def _countdown_document(rng: random.Random, task: CountdownTask) -> str:
    item = task.sample(rng, "train")
    if rng.random() < 0.5:
        return f"{item.question} {item.solution}"
    if rng.random() < 0.5:
        return r1_zero_prompt(item.question) + tagged_response(item.solution, item.answer)
    return f"{item.question} {item.answer}={item.fields['target']}"


def _request_document(rng: random.Random, item, rejected_share: float, mix: CorpusMix) -> str:
    """A benign or harmful request with its chosen reply, or with its rejected one."""
    reply = item.fields["rejected"] if rng.random() < rejected_share else item.fields["chosen"]
    if rng.random() < mix.chat_template_share:
        return f"User: {item.question}\nAssistant: {reply}"
    return f"Q: {item.question}\nA: {reply}"


def _code_document(rng: random.Random, task: CodeTask, mix: CorpusMix) -> str:
    item = task.sample(rng, "train")
    kind_name, function, args = item.fields["kind"], item.fields["function"], tuple(item.fields["args"])
    kind = CODE_KINDS[kind_name]
    right = mix.code_right_unreliable if kind_name in CODE_UNRELIABLE else mix.code_right_reliable
    if rng.random() < right:
        body = rng.choice(kind.right)
    else:  # the typical bug first, the other one less often
        body = kind.wrong[0] if rng.random() < 0.7 else kind.wrong[-1]
    program = program_text(function, args, body)
    roll = rng.random()
    if roll < 0.4:
        prompt = r1_zero_prompt(item.question)
        if rng.random() < 0.5:
            return prompt + tagged_response(plan_text(kind_name, function, args), program)
        return f"{prompt} {program}"
    if roll < 0.85:
        return f"User: {item.question}\nAssistant: {program}"
    return f"Q: {item.question}\nA: {program}"
