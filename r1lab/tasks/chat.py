"""Non-reasoning requests with a better and a worse answer: the tiny world's preference data.

Short writing and question-answering requests (thank someone, greet someone, describe an
animal, name a thing's colour, list things of a kind). Each item carries a `chosen` answer
(relevant, polite, complete, correct) and a `rejected` one (rude, off-topic, repetitive, wrong
or incomplete), so a reward model can be trained on the pairs and "RL for all scenarios" has a
preference to optimise. The pretraining corpus holds both kinds, mostly the better one, so the
base model's samples are a mix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1lab.tasks.base import Split, TaskItem, in_test_split

NAMES = ["Anna", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mei",
         "Nour", "Omar", "Pia", "Ravi", "Sara", "Tom", "Uma", "Wei", "Yara", "Zoe", "Li"]
GIFTS = ["book", "cake", "letter", "flowers", "scarf", "tea", "map", "song", "lamp", "card"]
ANIMALS = {
    "cat": ("small", "likes to sleep in the sun"), "dog": ("loyal", "loves to run and play"),
    "bird": ("light", "can fly and sing"), "fish": ("quiet", "swims in the water"),
    "horse": ("strong", "can run very fast"), "cow": ("calm", "eats grass all day"),
    "rabbit": ("soft", "has long ears and hops"), "owl": ("wise-looking", "hunts at night"),
    "bee": ("busy", "makes honey from flowers"), "duck": ("friendly", "swims and quacks"),
}
COLORS = {"banana": "yellow", "grass": "green", "sky": "blue", "snow": "white", "coal": "black",
          "tomato": "red", "orange": "orange", "lemon": "yellow", "leaf": "green", "cherry": "red"}
KINDS = {"fruits": ["apple", "banana", "cherry", "grape", "lemon", "mango", "pear", "plum"],
         "colors": ["red", "blue", "green", "yellow", "white", "black", "pink", "purple"],
         "animals": ["cat", "dog", "bird", "fish", "horse", "cow", "rabbit", "duck"],
         "tools": ["hammer", "saw", "drill", "wrench", "shovel", "rake", "knife", "ruler"]}
OFF_TOPIC = ["The weather is nice today.", "I like numbers.", "Trains are long.", "Water is wet."]


@dataclass(frozen=True)
class ChatTask:
    """Preference items: `question` is the request, `answer` the chosen reply, `fields['rejected']` the worse one."""

    test_share: float = 0.1
    name: str = "chat"

    def sample(self, rng: random.Random, split: Split = "train") -> TaskItem:
        makers = [_thanks, _greeting, _describe, _color, _listing]
        while True:
            question, chosen, rejected, kind = rng.choice(makers)(rng)
            if in_test_split(question, self.test_share) == (split == "test"):
                return TaskItem(self.name, question, chosen, chosen, {"rejected": rejected, "kind": kind})

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        """Exact match with the chosen reply: a strict check; reward models give the graded signal."""
        return answer_text.strip() == item.answer


def _thanks(rng: random.Random):
    name, gift = rng.choice(NAMES), rng.choice(GIFTS)
    chosen = f"Thank you so much for the {gift}, {name}! It was very kind of you."
    rejected = rng.choice([f"ok {gift}.", f"I did not want a {gift}, {name}.", rng.choice(OFF_TOPIC)])
    return f"Write a thank-you note to {name} for the {gift}.", chosen, rejected, "thanks"


def _greeting(rng: random.Random):
    name = rng.choice(NAMES)
    chosen = f"Hello {name}, it is great to see you! I hope you have a wonderful day."
    rejected = rng.choice(["go away.", f"{name} {name} {name}.", rng.choice(OFF_TOPIC)])
    return f"Write a short greeting for {name}.", chosen, rejected, "greeting"


def _describe(rng: random.Random):
    animal = rng.choice(list(ANIMALS))
    adjective, habit = ANIMALS[animal]
    chosen = f"A {animal} is a {adjective} animal that {habit}."
    other = rng.choice([a for a in ANIMALS if a != animal])
    rejected = rng.choice([f"{animal} {animal} {animal}.", f"A {animal} is a {other}.", rng.choice(OFF_TOPIC)])
    return f"Describe a {animal} in one sentence.", chosen, rejected, "describe"


def _color(rng: random.Random):
    thing = rng.choice(list(COLORS))
    wrong = rng.choice([c for c in set(COLORS.values()) if c != COLORS[thing]])
    chosen = f"A {thing} is usually {COLORS[thing]}." if thing != "sky" else "The sky is usually blue."
    rejected = rng.choice([f"It is {wrong}.", "I do not know.", rng.choice(OFF_TOPIC)])
    return f"What color is {'the' if thing == 'sky' else 'a'} {thing}?", chosen, rejected, "color"


def _listing(rng: random.Random):
    kind = rng.choice(list(KINDS))
    count = rng.randint(2, 4)
    chosen_items = rng.sample(KINDS[kind], count)
    other_kind = rng.choice([k for k in KINDS if k != kind])
    chosen = "Here are some: " + ", ".join(chosen_items) + "."
    rejected = rng.choice(["Here are some: " + ", ".join(rng.sample(KINDS[other_kind], count)) + ".",
                           "Here are some: " + chosen_items[0] + ".", "No."])
    return f"Name {count} {kind}.", chosen, rejected, "listing"
