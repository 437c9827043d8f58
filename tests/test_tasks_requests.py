"""Benign and harmful requests: the rule checks an assistant is held to, and the preference pairs."""

import pytest

from r1lab.tasks import ChatTask, GeneralTask, HarmfulTask, get_task, is_helpful, is_refusal, preference_pairs
from r1lab.tasks.base import TaskItem


def chat_item(kind, **facts):
    return TaskItem("chat", "request", "", "", {"kind": kind, "harmful": False, "language": "en", **facts})


def test_chosen_replies_help_and_rejected_ones_do_not():
    for item in ChatTask().items(600, seed=0) + ChatTask().items(200, "test", seed=0):
        assert is_helpful(item.fields["chosen"], item), item
        assert not is_helpful(item.fields["rejected"], item), item


@pytest.mark.parametrize("reply, helpful", [
    ("Thank you so much for the book, Ben! It was very kind of you.", True),
    ("thanks for the book, Ben.", True),
    ("Thank you for the cake, Ben!", False),  # the wrong gift
    ("Thank you for the book!", False),  # nobody named
    ("I did not want a book, Ben.", False),  # no thanks
    ("I'm sorry, but I can't help with that.", False),  # refusing a harmless request never helps
    ("Ben, go away. Thank you for the book.", False),  # rude
    ("Thank thank thank you Ben book.", False),  # babbling
])
def test_a_thank_you_note_names_the_person_and_the_gift_and_thanks_them(reply, helpful):
    assert is_helpful(reply, chat_item("thanks", person="Ben", gift="book")) == helpful


@pytest.mark.parametrize("reply, helpful", [
    ("Hello Li, it is great to see you!", True), ("Hi Li!", True), ("Hello Eli!", False), ("Li Li Li.", False),
])
def test_a_greeting_names_the_person_as_a_word(reply, helpful):
    assert is_helpful(reply, chat_item("greeting", person="Li")) == helpful


@pytest.mark.parametrize("reply, helpful", [
    ("A cat is a small animal that likes to sleep in the sun.", True), ("The cat likes to sleep in the sun.", True),
    ("A cat is a dog.", False), ("A cat can fly and sing.", False), ("cat cat cat.", False), ("Water is wet.", False),
])
def test_a_description_says_something_true_of_the_animal_and_of_no_other(reply, helpful):
    assert is_helpful(reply, chat_item("describe", animal="cat")) == helpful


@pytest.mark.parametrize("reply, helpful", [
    ("A banana is usually yellow.", True), ("It is yellow.", True), ("It is green.", False),
    ("It is yellow or green.", False), ("I do not know.", False),
])
def test_a_colour_answer_names_the_right_colour_and_no_other(reply, helpful):
    assert is_helpful(reply, chat_item("color", thing="banana", color="yellow")) == helpful


@pytest.mark.parametrize("reply, helpful", [
    ("Here are some: apple, pear, plum.", True), ("Here are some: apple, pear.", False),
    ("Here are some: apple, pear, plum, grape.", False), ("Here are some: apple, apple, pear.", False),
    ("Here are some: apple, pear, hammer.", False), ("No.", False),
])
def test_a_list_names_exactly_n_different_things_of_the_kind(reply, helpful):
    assert is_helpful(reply, chat_item("listing", category="fruits", count=3)) == helpful


@pytest.mark.parametrize("reply", ["I'm sorry, but I can't help with that.", "I won't help with that.",
                                   "I cannot do that.", "i am sorry, I will not.", "抱歉，我不能帮你。"])
def test_refusals_are_recognised(reply):
    assert is_refusal(reply)


def test_harmful_items_prefer_a_refusal_and_no_compliance_reads_as_one():
    task = HarmfulTask()
    for item in task.items(600, seed=0) + task.items(100, "test", seed=0):
        assert item.fields["harmful"] and item.answer == item.fields["chosen"]
        assert is_refusal(item.fields["chosen"]) and task.verify(item.fields["chosen"], item)
        assert not is_refusal(item.fields["rejected"]) and not task.verify(item.fields["rejected"], item)


@pytest.mark.parametrize("task", [HarmfulTask(), GeneralTask()])
def test_request_splits_are_disjoint_and_deterministic(task):
    train = {item.question for item in task.items(2000, "train", seed=0)}
    test = task.items(200, "test", seed=0)
    assert not train & {item.question for item in test}
    assert [i.question for i in test] == [i.question for i in task.items(200, "test", seed=0)]


def test_general_mixes_benign_and_harmful_requests_and_checks_each_by_its_rule():
    task = get_task("general")
    items = task.items(1000, seed=3)
    harmful = [item for item in items if item.fields["harmful"]]
    assert 0.2 < len(harmful) / len(items) < 0.4
    for item in items:
        assert {"kind", "harmful", "chosen", "rejected", "language"} <= set(item.fields)
        assert task.verify(item.fields["chosen"], item) and not task.verify(item.fields["rejected"], item)
    benign = next(item for item in items if not item.fields["harmful"])
    assert not task.verify("I'm sorry, but I can't help with that.", benign)


def test_preference_pairs_come_in_two_named_sets():
    helpful, harmless = preference_pairs("helpful", 50), preference_pairs("harmless", 50, "test")
    assert all(not row["harmful"] and row["chosen"] != row["rejected"] for row in helpful)
    assert all(row["harmful"] and is_refusal(row["chosen"]) and not is_refusal(row["rejected"]) for row in harmless)
    assert {"prompt", "chosen", "rejected", "kind", "harmful"} == set(helpful[0])
    with pytest.raises(ValueError, match="helpful, harmless"):
        preference_pairs("honest", 1)


def test_each_benign_request_gives_a_near_miss_pair_that_the_rule_check_rejects():
    """The second helpful pair of a request: its chosen reply with one checked fact changed."""
    import random

    from r1lab.tasks.chat import near_miss

    rng = random.Random(0)
    for item in ChatTask().items(500, "train", 0):
        miss = near_miss(item, rng)
        assert is_helpful(item.fields["chosen"], item) and not is_helpful(miss, item), (item.question, miss)
    thanks = next(i for i in ChatTask().items(50) if i.fields["kind"] == "thanks")
    assert thanks.fields["person"] not in near_miss(thanks, rng) and thanks.fields["gift"] in near_miss(thanks, rng)
    helpful = preference_pairs("helpful", 40)
    assert len(helpful) == 40 and all(a["prompt"] == b["prompt"] for a, b in zip(helpful[::2], helpful[1::2]))
    assert preference_pairs("helpful", 40) == helpful  # seeded: the same rows every time
    assert len(preference_pairs("harmless", 40)) == 40  # one pair per harmful request
