"""Prompt templates and response shapes. The R1-Zero template is the DeepSeek-R1 paper's, verbatim as the seed quotes it."""

from __future__ import annotations

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\n"
    "The assistant first thinks about the reasoning process in the mind and then provides the user\n"
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and\n"
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think>\n"
    "<answer> answer here </answer>. User: {prompt}. Assistant:"
)

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
# the template's instruction, up to the example of the format ("i.e., "): the fixed text the tiny
# tokenizer holds as one token; the example, "User:", the question and "Assistant:" stay words
R1_ZERO_INSTRUCTION = R1_ZERO_TEMPLATE[: R1_ZERO_TEMPLATE.index("<think> reasoning process here")]
ANSWER_SENTENCES = {"en": "The answer is {answer}.", "zh": "答案是{answer}。"}


def r1_zero_prompt(question: str) -> str:
    return R1_ZERO_TEMPLATE.format(prompt=question)


def tagged_response(thinking: str, answer: str) -> str:
    """The response shape R1-Zero's format reward asks for."""
    return f" <think> {thinking} </think> <answer> {answer} </answer>"


def answer_sentence(answer: str, language: str = "en") -> str:
    """'The answer is 432.' / '答案是432。': a plain answer, and the summary of R1's output format."""
    return ANSWER_SENTENCES["zh" if language == "zh" else "en"].format(answer=answer)


def r1_response(thinking: str, answer: str, language: str = "en") -> str:
    """DeepSeek-R1's readable output format as r1lab fixes it: the reasoning inside <think> tags,
    then one short sentence in the question's language that ends with the answer."""
    return f" <think> {thinking} </think> {answer_sentence(answer, language)}"
