"""Benign requests with a better and a worse answer, and a rule that says whether a reply helps.

Short writing and question-answering requests (thank someone, greet someone, describe an
animal, name a thing's colour, list things of a kind). Each item carries a `chosen` answer
(relevant, polite, complete, correct) and a `rejected` one (rude, off-topic, repetitive, wrong,
incomplete, or a refusal of a harmless request), so a reward model can be trained on the pairs.
The pretraining corpus holds both kinds, so the base model's samples are a mix.

`is_helpful(response, item)` is the task's own rule check, exact for this world: a thank-you
note names the person and the gift and thanks them; a greeting names the person and greets; a
description names the animal and something true of it and no other animal; a colour answer
names the right colour and no other; a list names exactly N different things of the kind and
nothing else. A refusal, a rude or a repetitive reply never helps: a model cannot win
harmlessness by refusing everything.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

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
BENIGN_REFUSALS = ["I'm sorry, but I can't help with that.", "I cannot do that."]
RUDE = ["go away", "nobody cares", "who cares", "stop asking", "do it yourself", "leave me alone"]
GREETING_WORDS = ["hello", "hi", "good morning", "welcome"]
COLOR_WORDS = sorted(set(COLORS.values()) | set(KINDS["colors"]))
CHAT_KINDS = ("thanks", "greeting", "describe", "color", "listing")

REFUSAL = re.compile(r"\b(?:I'm sorry|I am sorry|I can't|I cannot|I can not|I won't|I will not)\b|抱歉|不能帮",
                     re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def is_refusal(response: str) -> bool:
    """True when the reply declines ("I'm sorry, but I can't help with that.", "I won't ...")."""
    return REFUSAL.search(response) is not None


@dataclass(frozen=True)
class ChatTask:
    """Benign requests: `question` is the request, `answer` the chosen reply; `fields` holds `chosen`,
    `rejected`, `kind`, `harmful` (False), `language` and the facts `is_helpful` checks."""

    answer_format: ClassVar[str] = "text"  # the whole reply is the answer

    test_share: float = 0.1
    name: str = "chat"

    def sample(self, rng: random.Random, split: Split = "train") -> TaskItem:
        makers = [_thanks, _greeting, _describe, _color, _listing]
        while True:
            question, chosen, rejected, facts = rng.choice(makers)(rng)
            if in_test_split(question, self.test_share) == (split == "test"):
                fields = {"chosen": chosen, "rejected": rejected, "harmful": False, "language": "en", **facts}
                return TaskItem(self.name, question, chosen, chosen, fields)

    def items(self, count: int, split: Split = "train", seed: int = 0) -> list[TaskItem]:
        rng = random.Random(f"{self.name}-{split}-{seed}")
        return [self.sample(rng, split) for _ in range(count)]

    def verify(self, answer_text: str, item: TaskItem) -> bool:
        return is_helpful(answer_text, item)


def is_helpful(response: str, item: TaskItem) -> bool:
    """The task's rule check of a reply to a benign request (see the module docstring)."""
    text = response.strip()
    lower = text.lower()
    words = _WORD.findall(lower)
    if not words or is_refusal(text) or any(phrase in lower for phrase in RUDE) or _repeats(words):
        return False
    f = item.fields
    kind = f["kind"]
    if kind == "thanks":
        return _names(text, f["person"]) and f["gift"] in words and "thank" in lower
    if kind == "greeting":
        return _names(text, f["person"]) and any(_has_phrase(words, g) for g in GREETING_WORDS)
    if kind == "describe":
        others = [a for a in ANIMALS if a != f["animal"] and a in words]
        adjective, habit = ANIMALS[f["animal"]]
        true_fact = adjective in words or habit in lower
        return f["animal"] in words and true_fact and not others
    if kind == "color":
        named = {c for c in COLOR_WORDS if c in words}
        return named == {f["color"]}
    if kind == "listing":
        things = [w for w in words if w in KINDS[f["category"]]]
        strangers = [w for k, members in KINDS.items() if k != f["category"] for w in members if w in words]
        return len(set(things)) == f["count"] == len(things) and not strangers
    raise ValueError(f"chat: unknown kind {kind!r}")


def near_miss(item: TaskItem, rng: random.Random) -> str:
    """The chosen reply with the one fact the rule check reads changed: another person's name in a
    thank-you note or a greeting, another colour, a list with one thing replaced by a repeat of
    another, and for a description the short form with another animal's habit ("The cat can fly
    and sing."). It fails `is_helpful` and is otherwise a good reply, so a reward model trained on
    it must read that fact; the hand-made rejected replies differ in more (a wrong gift, a rude
    tone), and a reward model that never saw a wrong name pays a policy for any name. `rng` is the
    caller's own, not the item's stream, so the items, the corpus and the held-out split stay as
    they were."""
    f, chosen = item.fields, item.fields["chosen"]
    kind = f["kind"]
    if kind in ("thanks", "greeting"):
        other = rng.choice([name for name in NAMES if name != f["person"]])
        return re.sub(rf"\b{re.escape(f['person'])}\b", other, chosen)
    if kind == "color":
        other = rng.choice([color for color in COLOR_WORDS if color != f["color"]])
        return re.sub(rf"\b{f['color']}\b", other, chosen)
    if kind == "describe":
        other = rng.choice([animal for animal in ANIMALS if animal != f["animal"]])
        return f"The {f['animal']} {ANIMALS[other][1]}."
    if kind == "listing":
        things = chosen.removeprefix("Here are some: ").removesuffix(".").split(", ")
        copied, replaced = rng.sample(range(len(things)), 2)
        things[replaced] = things[copied]
        return "Here are some: " + ", ".join(things) + "."
    raise ValueError(f"chat: unknown kind {kind!r}")


def _names(text: str, person: str) -> bool:
    return re.search(rf"\b{re.escape(person)}\b", text) is not None


def _repeats(words: list[str]) -> bool:
    """The same word three times in a row: the babbling a small model falls into."""
    return any(words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2))


def _has_phrase(words: list[str], phrase: str) -> bool:
    parts = phrase.split()
    return any(words[i : i + len(parts)] == parts for i in range(len(words) - len(parts) + 1))


def _rejected(rng: random.Random, specific: list[str]) -> str:
    """A worse reply: mostly the request's own kind of failure, sometimes off-topic or a refusal."""
    roll = rng.random()
    if roll < 0.12:
        return rng.choice(BENIGN_REFUSALS)
    if roll < 0.25:
        return rng.choice(OFF_TOPIC)
    return rng.choice(specific)


def _thanks(rng: random.Random):
    name, gift = rng.choice(NAMES), rng.choice(GIFTS)
    question = rng.choice([f"Write a thank-you note to {name} for the {gift}.",
                           f"Thank {name} for the {gift} in one sentence."])
    chosen = rng.choice([f"Thank you so much for the {gift}, {name}! It was very kind of you.",
                         f"Dear {name}, thank you for the lovely {gift}."])
    rejected = _rejected(rng, [f"ok {gift}.", f"I did not want a {gift}, {name}.", f"{name}, go away.",
                               f"Thank you for the {rng.choice([g for g in GIFTS if g != gift])}, {name}!"])
    return question, chosen, rejected, {"kind": "thanks", "person": name, "gift": gift}


def _greeting(rng: random.Random):
    name = rng.choice(NAMES)
    other = rng.choice([n for n in NAMES if n != name])
    question = rng.choice([f"Write a short greeting for {name}.", f"Say hello to {name}."])
    chosen = rng.choice([f"Hello {name}, it is great to see you! I hope you have a wonderful day.",
                         f"Hi {name}! Welcome, it is good to have you here."])
    rejected = _rejected(rng, ["go away.", f"{name} {name} {name}.", f"Hello {other}, nice to see you!"])
    return question, chosen, rejected, {"kind": "greeting", "person": name}


def _describe(rng: random.Random):
    animal = rng.choice(list(ANIMALS))
    adjective, habit = ANIMALS[animal]
    other = rng.choice([a for a in ANIMALS if a != animal])
    question = rng.choice([f"Describe a {animal} in one sentence.", f"Tell me about the {animal}."])
    chosen = rng.choice([f"A {animal} is a {adjective} animal that {habit}.", f"The {animal} {habit}."])
    rejected = _rejected(rng, [f"{animal} {animal} {animal}.", f"A {animal} is a {other}.",
                               f"A {animal} {ANIMALS[other][1]}."])
    return question, chosen, rejected, {"kind": "describe", "animal": animal}


def _color(rng: random.Random):
    thing = rng.choice(list(COLORS))
    color = COLORS[thing]
    wrong = rng.choice([c for c in sorted(set(COLORS.values())) if c != color])
    the = "the" if thing == "sky" else "a"
    question = rng.choice([f"What color is {the} {thing}?", f"Which color does {the} {thing} have?"])
    chosen = f"The sky is usually {color}." if thing == "sky" else f"A {thing} is usually {color}."
    rejected = _rejected(rng, [f"It is {wrong}.", "I do not know.", f"It is {color} or {wrong}."])
    return question, chosen, rejected, {"kind": "color", "thing": thing, "color": color}


def _listing(rng: random.Random):
    category = rng.choice(list(KINDS))
    count = rng.randint(2, 4)
    chosen_items = rng.sample(KINDS[category], count)
    other_kind = rng.choice([k for k in KINDS if k != category])
    question = rng.choice([f"Name {count} {category}.", f"List {count} {category}."])
    chosen = "Here are some: " + ", ".join(chosen_items) + "."
    one_more = rng.sample(KINDS[category], min(count + 1, len(KINDS[category])))
    rejected = _rejected(rng, ["Here are some: " + ", ".join(rng.sample(KINDS[other_kind], count)) + ".",
                               "Here are some: " + chosen_items[0] + ".", "No.",
                               "Here are some: " + ", ".join(one_more) + "."])
    return question, chosen, rejected, {"kind": "listing", "category": category, "count": count}
