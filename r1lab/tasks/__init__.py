"""Verifiable tasks and the tiny world's synthetic corpus."""

from __future__ import annotations

from r1lab.tasks.arithmetic import ArithmeticTask, normalize_number, worked_solution
from r1lab.tasks.base import TaskItem, in_test_split
from r1lab.tasks.chat import ChatTask
from r1lab.tasks.countdown import CountdownTask, check_countdown, evaluate_expression

TASKS = {
    "arithmetic": ArithmeticTask,
    "arithmetic-easy": lambda: ArithmeticTask(min_digits=1, max_digits=2, name="arithmetic-easy"),
    "countdown": CountdownTask,
    "chat": ChatTask,
}


def get_task(name: str):
    """A built-in task by name: arithmetic, arithmetic-easy, countdown, chat."""
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}'; tasks: {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["ArithmeticTask", "ChatTask", "CountdownTask", "TASKS", "TaskItem", "check_countdown",
           "evaluate_expression", "get_task", "in_test_split", "normalize_number", "worked_solution"]
