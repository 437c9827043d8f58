"""The held-out evaluation: language and reflection figures, answers read per task, the base-model figures."""

import pytest

from r1lab.pipelines.evaluate import (
    EvalSettings,
    JudgeCase,
    anywhere_answer,
    are_correct,
    code_pass_rate,
    evaluate,
    harmful_compliance_rate,
    helpful_rate,
    judge_agreement,
    language_figures,
    own_judge_cases,
    rendered_judge_cases,
    template_answer,
    verdict_agreement,
)
from r1lab.tasks import ArithmeticTask, get_task
from r1lab.tasks.base import TaskItem

EN_WORKED = " <think> 12+5: 2+5+0=7, 7; 1+0: 1+0+0=1, 17. So 12+5=17. </think> <answer> 17 </answer>"
ZH_WORKED = " <think> 12+5：2+5+0=7，得7；1+0：1+0+0=1，得17。所以12+5=17。 </think> <answer> 17 </answer>"
MIXED = " <think> 12+5: 2+5+0=7, 得7; 1+0: 1+0+0=1, 得17. So 12+5=17. </think> <answer> 17 </answer>"
CHECKED = " <think> 12+5: ... 17. Check: 17-5: ... 12. Right. So 12+5=17. </think> <answer> 17 </answer>"


def item(language):
    return TaskItem("arithmetic", "q", "17", "", {"language": language})


def test_mixing_is_counted_against_each_question_language_and_reflection_on_every_completion():
    texts = [EN_WORKED, MIXED, ZH_WORKED, EN_WORKED, MIXED, " 17"]
    items = [item("en"), item("en"), item("zh"), item("zh"), item("zh"), item("zh")]
    figures = language_figures(texts, items)
    assert figures["mixing_rate"] == pytest.approx(3 / 6)  # mixed for en; English and mixed for zh
    assert figures["mixing_rate_zh"] == pytest.approx(2 / 4)  # a wordless answer does not mix
    assert figures["reflection_rate"] == 0.0
    assert language_figures([CHECKED, EN_WORKED], [item("en")] * 2, prefix="sampled_") == {
        "sampled_mixing_rate": 0.0, "sampled_mixing_rate_zh": None, "sampled_reflection_rate": 0.5}


def test_answers_are_read_per_task():
    code = get_task("code")
    completion = " <think> plan </think> <answer> def add(a, b):\n    return a + b </answer>"
    program = template_answer(completion, "r1-zero", code)
    assert program.startswith("def add(a, b):\n") and "return a + b" in program
    compile(program, "answer", "exec")
    assert anywhere_answer(completion, code) == program
    assert template_answer(" Thank you for the book, Ben! ", "chat", get_task("chat")) == "Thank you for the book, Ben!"
    assert template_answer(EN_WORKED, "r1-zero") == "17" and template_answer("so 17 or 18", "plain") == "18"
    assert anywhere_answer(EN_WORKED) == "17"


def test_code_answers_are_checked_together_in_the_sandbox():
    code = get_task("code")
    items = code.items(3, "test")
    answers = [items[0].answer, None, "def broken(:\n"]
    assert are_correct(answers, items, code) == [True, False, False]


def test_verdict_agreement_counts_unparsed_verdicts_as_disagreeing():
    cases = [JudgeCase("q", "5", "r", True), JudgeCase("q", "5", "r", False), JudgeCase("q", "5", "r", False)]
    figures = verdict_agreement([" 5 vs 5: 5 vs 5; correct.", " 4 vs 5: 4 vs 5; wrong.", " hmm"], cases)
    assert figures["agreement"] == pytest.approx(2 / 3) and figures["unparsed"] == pytest.approx(1 / 3)
    assert figures["agreement_on_right"] == 1.0 and figures["agreement_on_wrong"] == 0.5


def test_rendered_judge_cases_alternate_right_and_wrong():
    cases = rendered_judge_cases(ArithmeticTask(zh_share=0.5).items(12, "test"))
    assert [case.correct for case in cases] == [True, False] * 6


def test_an_evaluation_reports_the_language_and_reflection_figures(qwen2_dir):
    from r1lab.llm.loading import load_model

    loaded = load_model(qwen2_dir)
    task = get_task("arithmetic")
    items = task.items(6, "test")
    result = evaluate(loaded.policy, loaded.tokenizer, items, EvalSettings(items=6, k=2, max_new_tokens=6), task)
    for key in ("mixing_rate", "mixing_rate_zh", "reflection_rate", "sampled_mixing_rate", "sampled_mixing_rate_zh",
                "sampled_reflection_rate", "accuracy", "pass_at_k"):
        assert key in result
    assert result["mixing_rate_zh"] is None or 0 <= result["mixing_rate_zh"] <= 1


def test_the_base_model_figures_run_on_any_model(qwen2_dir):
    from r1lab.llm.loading import load_model

    loaded = load_model(qwen2_dir)
    model, tokenizer = loaded.policy, loaded.tokenizer
    assert 0 <= harmful_compliance_rate(model, tokenizer, get_task("harmful").items(3, "test"), k=2, max_new_tokens=8) <= 1
    assert 0 <= helpful_rate(model, tokenizer, get_task("chat").items(3, "test"), k=2, max_new_tokens=8) <= 1
    code = get_task("code")
    assert 0 <= code_pass_rate(model, tokenizer, code.items(3, "test"), code, k=2, max_new_tokens=8) <= 1
    task = get_task("arithmetic")
    cases = own_judge_cases(model, tokenizer, task.items(4, "test"), task, count=4, k=2, max_new_tokens=8)
    assert sum(case.correct for case in cases) * 2 == len(cases) <= 4
    figures = judge_agreement(model, tokenizer, rendered_judge_cases(task.items(4, "test")), max_new_tokens=6)
    assert figures["cases"] == 4 and 0 <= figures["agreement"] <= 1


def test_under_the_r1_template_answers_come_from_the_summary_and_format_is_r1s():
    from r1lab.pipelines.evaluate import follows_format, template_answer

    text = " <think> 3+4: 3+4+0=7, 7. So 3+4=7. Check 9. </think> The answer is 7."
    assert template_answer(text, "r1") == "7" and template_answer(text, "plain") == "7"
    assert template_answer(" <think> 3+4=7, not 9 </think>", "r1") is None  # no summary: no answer
    assert follows_format(text, "r1") and not follows_format(text, "r1-zero")


def test_countdown_answer_anywhere_reads_the_last_expression_not_the_last_number():
    from r1lab.pipelines.evaluate import anywhere_answer, template_answer
    from r1lab.tasks import get_task

    task = get_task("countdown")
    item = task.items(1)[0]
    assert task.verify(anywhere_answer(item.solution, task), item)  # "... So (6-1)*2=10." -> "(6-1)*2"
    assert anywhere_answer("12+5=17, so 17", task) == "12+5" and anywhere_answer("just 17", task) is None
    assert template_answer("<think> 3*4=12 </think> The answer is 3*4+5.", "r1", task) == "3*4+5"
