"""What every verifiable task gives: items with a question, a ground truth, a worked solution, and a verifier."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Split = Literal["train", "test"]
Language = Literal["en", "zh", "mixed"]


@dataclass(frozen=True)
class TaskItem:
    """One question of a task.

    `answer` is the ground truth as text; `fields` holds what a verifier or reward function needs
    besides it (operands, the countdown numbers); `solution` is a worked step-by-step solution
    that a model could imitate, in English (its other languages come from the task).
    """

    task: str
    question: str
    answer: str
    solution: str
    fields: dict[str, Any] = field(default_factory=dict)


def in_test_split(key: str, test_share: float) -> bool:
    """A stable, seed-free split: an item is held out when the hash of its canonical key says so.

    Hashing the item itself (not its position in a stream) keeps the splits disjoint for any
    seed, any sample size and any process.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < test_share
