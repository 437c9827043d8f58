"""Verifiable tasks and the tiny world's synthetic corpus."""

from __future__ import annotations

from r1lab.tasks.arithmetic import (
    ArithmeticTask,
    caught_slip,
    has_self_check,
    normalize_number,
    worked_solution,
)
from r1lab.tasks.base import TaskItem, in_test_split
from r1lab.tasks.chat import ChatTask, is_helpful, is_refusal
from r1lab.tasks.code import CodeTask
from r1lab.tasks.countdown import CountdownTask, check_countdown, evaluate_expression
from r1lab.tasks.general import GeneralTask, preference_pairs
from r1lab.tasks.harmful import HarmfulTask
from r1lab.tasks.judge import JudgeTask, judge_prompt, parse_verdict

TASKS = {
    "arithmetic": lambda: ArithmeticTask(min_digits=1, max_digits=5, zh_share=0.5),
    "arithmetic-easy": lambda: ArithmeticTask(min_digits=1, max_digits=2, zh_share=0.5, name="arithmetic-easy"),
    "arithmetic-hard": lambda: ArithmeticTask(min_digits=5, max_digits=6, zh_share=0.5, name="arithmetic-hard"),
    "countdown": CountdownTask,
    "chat": ChatTask,
    "harmful": HarmfulTask,
    "general": GeneralTask,
    "judge": JudgeTask,
    "code": CodeTask,
}


def get_task(name: str):
    """A built-in task by name: arithmetic (1-5 digits, English and Chinese questions), arithmetic-easy
    (1-2), arithmetic-hard (5-6), countdown, chat (benign requests), harmful, general (both), judge, code."""
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; tasks: {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["ArithmeticTask", "ChatTask", "CodeTask", "CountdownTask", "GeneralTask", "HarmfulTask", "JudgeTask",
           "TASKS", "TaskItem", "caught_slip", "check_countdown", "evaluate_expression", "get_task",
           "has_self_check", "in_test_split", "is_helpful", "is_refusal", "judge_prompt", "normalize_number",
           "parse_verdict", "preference_pairs", "worked_solution"]
