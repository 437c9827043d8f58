"""The pretraining corpus and the tiny tokenizer: seeded, train-split only, no wrong conclusions."""

import itertools
import re

import pytest

from r1lab.llm.tiny import build_tokenizer
from r1lab.tasks import ArithmeticTask, CodeTask, has_self_check, in_test_split
from r1lab.tasks.corpus import DOCUMENT_KINDS, CorpusMix, documents
from r1lab.tasks.judge import parse_verdict, response_answer
from r1lab.tasks.templates import R1_ZERO_INSTRUCTION, TAGS, r1_zero_prompt

CONCLUSION = re.compile(r"(?:So |所以|right, so |正确，所以)(\d+)([+-])(\d+)=(\d+)")


@pytest.fixture(scope="module")
def sample():
    return list(itertools.islice(documents(seed=7), 6000))


def test_the_stream_is_seeded_and_holds_every_kind(sample):
    assert sample[:200] == list(itertools.islice(documents(seed=7), 200))
    assert sample[:50] != list(itertools.islice(documents(seed=8), 50))
    assert {kind for kind, _ in sample} == set(DOCUMENT_KINDS)


def test_every_worked_solution_concludes_on_the_true_result_even_after_a_slip(sample):
    worked = [text for kind, text in sample if kind.startswith("worked")]
    assert any(has_self_check(text) for text in worked) and any("Wait, redo" in text for text in worked)
    for text in worked:
        a, op, b, result = CONCLUSION.findall(text)[-1]
        assert int(result) == (int(a) + int(b) if op == "+" else int(a) - int(b)), text
        assert response_answer(text) == result  # the last number is the answer


def test_arithmetic_and_code_documents_come_from_the_train_split(sample):
    for kind, text in sample:
        if kind in ("direct", "worked", "worked_chinese", "worked_mixed", "template", "judge"):
            for a, op, b in re.findall(r"(\d+)([+-])(\d+)(?:=|\?|:|：|等于|是多少|。|\.)", text)[:1]:
                assert not in_test_split(f"{a}{op}{b}", ArithmeticTask().test_share), text
    held_out = {item.question for item in CodeTask().items(300, "test")}
    assert not any(question in text for kind, text in sample if kind == "code" for question in held_out)


def test_judge_documents_end_with_the_verdict_their_response_deserves(sample):
    for kind, text in sample:
        if kind == "judge":
            response = text.split("Response:\n", 1)[1].split("\nQuestion: ", 1)[0]
            reference = re.search(r"Reference answer: (\d+)", text).group(1)
            assert parse_verdict(text.rsplit("Verdict:", 1)[1]) is (response_answer(response) == reference)


def test_the_mix_can_be_changed_by_name():
    only_chat = CorpusMix(**{kind: 0.0 for kind in DOCUMENT_KINDS} | {"chat": 1.0})
    assert {kind for kind, _ in itertools.islice(documents(0, only_chat), 50)} == {"chat"}


def test_the_tokenizer_keeps_digits_single_tags_whole_and_the_instruction_one_token(sample):
    tokenizer = build_tokenizer([text for _, text in sample[:1500]], vocab_size=400)
    prompt = r1_zero_prompt("What is 347+85?")
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(prompt)["input_ids"])
    assert tokens[0] == R1_ZERO_INSTRUCTION and all(tag in tokens for tag in TAGS)
    digits = ["3", "4", "7", "+", "8", "5"]
    assert any(tokens[i : i + len(digits)] == digits for i in range(len(tokens)))
    assert len(tokens) < 40 and tokenizer.decode(tokenizer(prompt)["input_ids"]) == prompt
    ids = tokenizer(prompt + " <think> 1 </think> <answer> 12 </answer>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True).endswith("<answer> 12 </answer>")
    assert all(sum(ch.isdigit() for ch in token) <= 1 for token in tokenizer.convert_ids_to_tokens(ids))
