"""The code reward: run the model's program against the item's tests in the sandbox.

    reward = tests passed / tests            (partial=True, the default)
           = 1 if every test passed, else 0  (partial=False)

The code task gives each item `tests`, a list of assert statements (`"assert add(2, 3) == 5"`),
and `entry_point`, the function's name. Each test runs on its own in the program's namespace,
so one that fails, raises or loops (past its share of the time) fails alone; a program that
does not run to its end (an exception or `sys.exit` at top level) passes none. The sandbox's
harness, not the program, reports which tests passed, under the execution's nonce.
"""

from __future__ import annotations

import textwrap

from r1lab.rewards.parsing import last_answer_block
from r1lab.rewards.sandbox import SandboxLimits, execute_many

PYTHON_FENCES = ("", "python", "py", "python3")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of each ``` fenced block, in order; an unclosed last block runs to the end."""
    blocks, position = [], 0
    while (opening := text.find("```", position)) >= 0:
        line_end = text.find("\n", opening + 3)
        if line_end < 0:
            break
        info = text[opening + 3 : line_end].strip().lower()
        closing = text.find("```", line_end + 1)
        blocks.append((info, text[line_end + 1 : closing if closing >= 0 else len(text)]))
        if closing < 0:
            break
        position = closing + 3
    return blocks


def extract_code(completion: str) -> str:
    """The program in a completion, one rule for the reward and the evaluation.

    The first of: the last <answer>...</answer>; the last ```python fenced block; the text after
    the last </think>; the whole completion. Fences inside the chosen text are taken off (its
    last Python block is the program), and common indentation is removed.
    """
    answer = last_answer_block(completion)
    if answer is not None:
        return _unfenced(answer)
    blocks = _python_blocks(completion)
    if blocks:
        return _tidy(blocks[-1])
    think_end = completion.rfind("</think>")
    return _unfenced(completion[think_end + len("</think>") :] if think_end >= 0 else completion)


def code_reward(prompts, completions, tests, partial: bool = True, timeout: float = 2.0,
                limits: SandboxLimits | None = None, **_) -> list[float | None]:
    """Share of each item's tests the completion's program passes in the sandbox (None without tests).

    All programs of the batch run in parallel (the sandbox's `max_parallel`), each under `timeout`
    seconds of wall clock; with `partial=False` a program scores 1 only when every test passes.
    """
    scored = [i for i, own in enumerate(tests) if own]
    results = execute_many([extract_code(completions[i]) for i in scored], [list(tests[i]) for i in scored],
                           timeout=timeout, limits=limits)
    rewards: list[float | None] = [None] * len(completions)
    for i, result in zip(scored, results):
        rewards[i] = result.pass_share if partial else float(result.passed)
    return rewards


def _python_blocks(text: str) -> list[str]:
    return [body for info, body in fenced_blocks(text) if info in PYTHON_FENCES]


def _unfenced(text: str) -> str:
    blocks = _python_blocks(text)
    return _tidy(blocks[-1] if blocks else text.replace("```", ""))


def _tidy(code: str) -> str:
    lines = code.splitlines()
    while lines and not lines[0].strip():  # blank lines first: dedent must see the first line's indent
        lines.pop(0)
    return textwrap.dedent("\n".join(lines)).rstrip() + "\n"
