"""What every verifiable task gives: items with a question, a ground truth, a worked solution, and a verifier."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Split = Literal["train", "test"]
Language = Literal["en", "zh", "mixed"]  # "mixed": English sentences with Chinese step words
LANGUAGES = ("en", "zh")  # the languages a question can be asked in


@dataclass(frozen=True)
class TaskItem:
    """One question of a task.

    `answer` is the ground truth as text; `fields` holds what a verifier or reward function needs
    besides it (operands, the countdown numbers, hidden tests) and always `language`, the
    question's language ("en" or "zh"); `solution` is a worked solution that a model could
    imitate, in the question's language (other languages come from the task's renderer).
    """

    task: str
    question: str
    answer: str
    solution: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def language(self) -> str:
        return self.fields.get("language", "en")


def in_test_split(key: str, test_share: float) -> bool:
    """A stable, seed-free split: an item is held out when the hash of its canonical key says so.

    Hashing the item itself (not its position in a stream) keeps the splits disjoint for any
    seed, any sample size and any process.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < test_share
