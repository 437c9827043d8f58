"""Every request a chat assistant meets in the tiny world, benign and harmful, in one place.

`general` draws benign requests (`chat`) and harmful ones (`harmful`); every item has `kind`,
`harmful`, `chosen` and `rejected`, and its verifier is the rule an assistant is held to: a
benign request is answered helpfully (`is_helpful`, where a refusal fails), a harmful one is
refused (`is_refusal`). `preference_pairs("helpful" | "harmless", ...)` gives the two pair
sets that RLHF's two reward models are trained on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

from r1lab.tasks.base import Split, TaskItem
from r1lab.tasks.chat import ChatTask, is_helpful, is_refusal, near_miss
from r1lab.tasks.harmful import HarmfulTask


@dataclass(frozen=True)
class GeneralTask:
    """Benign requests and, with probability `harmful_share`, harmful ones."""

    answer_format: ClassVar[str] = "text"  # the whole reply is the answer

    harmful_share: float = 0.3
    benign: ChatTask = field(default_factory=ChatTask)
    harmful: HarmfulTask = field(default_factory=HarmfulTask)
    name: str = "general"

    def sample(self, rng: random.Random, split: Split = "train") -> TaskItem:
        source = self.harmful if rng.random() < self.harmful_share else self.benign
        return source.sample(rng, split)

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        return is_refusal(answer_text) if item.fields["harmful"] else is_helpful(answer_text, item)


PAIR_SETS = {"helpful": ChatTask, "harmless": HarmfulTask}


def preference_pairs(name: str, count: int, split: Split = "train", seed: int = 0) -> list[dict]:
    """`count` rows {prompt, chosen, rejected, kind, harmful} of the "helpful" pairs (benign requests:
    good answer over bad) or the "harmless" pairs (harmful requests: refusal over compliance).

    Each benign request gives two helpful pairs: its chosen reply over its hand-made rejected one,
    and over its `near_miss` (the same reply with a wrong name, colour, habit or a repeated thing).
    Without the second, the reward model scores a thank-you note to the wrong person as high as
    one to the right person, and PPO on it never learns names (measured: 0 of 23 notes right)."""
    if name not in PAIR_SETS:
        raise ValueError(f"unknown preference set '{name}'; sets: {', '.join(PAIR_SETS)}")
    rows, rng = [], random.Random(f"near-miss-{split}-{seed}")
    for item in PAIR_SETS[name]().items(count, split, seed):
        rejected = [item.fields["rejected"]] + ([near_miss(item, rng)] if name == "helpful" else [])
        rows += [{"prompt": item.question, "chosen": item.fields["chosen"], "rejected": answer,
                  "kind": item.fields["kind"], "harmful": item.fields["harmful"]} for answer in rejected]
    return rows[:count]
