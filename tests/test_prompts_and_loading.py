"""Prompt datasets, templates and model loading: bad input gets one clear error naming where it is."""

import json

import pytest
import torch

from r1lab.llm.loading import load_model, pick_dtype
from r1lab.llm.prompts import apply_template, dataset_prompts, load_prompts, read_jsonl_prompts
from r1lab.tasks.templates import R1_ZERO_TEMPLATE


def write_rows(path, rows):
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")
    return path


def test_jsonl_rows_become_items_with_extra_fields(tmp_path):
    path = write_rows(tmp_path / "d.jsonl", [{"prompt": "1+1?", "answer": 2, "level": "easy"}, "",
                                             {"prompt": "2+2?", "answer": "4"}])
    items = read_jsonl_prompts(path)
    assert [(i.question, i.answer) for i in items] == [("1+1?", "2"), ("2+2?", "4")]
    assert items[0].fields == {"level": "easy"}


@pytest.mark.parametrize("bad_row, message", [
    ("{not json", r"d.jsonl:2: not valid JSON"),
    ('{"answer": "4"}', r"d.jsonl:2: missing field 'prompt'"),
    ('{"prompt": "", "answer": "4"}', r"d.jsonl:2: 'prompt' must be a non-empty string"),
    ('["a list"]', r"d.jsonl:2: expected a JSON object"),
])
def test_a_malformed_row_names_the_file_and_line(tmp_path, bad_row, message):
    path = write_rows(tmp_path / "d.jsonl", [{"prompt": "1+1?", "answer": "2"}, bad_row])
    with pytest.raises(ValueError, match=message):
        read_jsonl_prompts(path)


def test_datasets_objects_and_task_names_are_prompt_sources():
    rows = [{"prompt": "q1", "answer": "a1"}, {"prompt": "q2", "answer": "a2", "topic": "x"}]
    assert [i.fields for i in dataset_prompts(rows)] == [{}, {"topic": "x"}]
    items = load_prompts("arithmetic", split="test", count=5)
    assert len(items) == 5 and items[0].task == "arithmetic"


def test_templates_by_name(small_tokenizer):
    assert apply_template("plain", "What is 2+2?") == "What is 2+2?"
    r1 = apply_template("r1-zero", "What is 2+2?")
    assert r1 == R1_ZERO_TEMPLATE.replace("{prompt}", "What is 2+2?") and r1.endswith("User: What is 2+2?. Assistant:")
    assert apply_template("chat", "Hi", small_tokenizer) == "User: Hi\nAssistant:"
    with pytest.raises(ValueError, match="plain, chat, r1-zero"):
        apply_template("alpaca", "Hi")


def test_the_r1_zero_template_is_the_papers_text():
    assert R1_ZERO_TEMPLATE.startswith("A conversation between User and Assistant. The user asks a question, and the "
                                       "Assistant solves it.\nThe assistant first thinks about the reasoning process")
    assert "<think> reasoning process here </think>\n<answer> answer here </answer>" in R1_ZERO_TEMPLATE


def test_a_local_directory_loads_with_a_frozen_reference(qwen2_dir):
    loaded = load_model(qwen2_dir, reference=True)
    assert loaded.policy.config.model_type == "qwen2" and loaded.dtype == torch.float32
    assert loaded.tokenizer.padding_side == "left"
    assert not any(p.requires_grad for p in loaded.reference.parameters())
    assert not loaded.reference.training
    first = next(loaded.policy.parameters())
    assert first.data_ptr() != next(loaded.reference.parameters()).data_ptr()


def test_reference_is_only_built_on_request(qwen2_dir):
    assert load_model(qwen2_dir).reference is None


def test_a_missing_model_directory_is_named_as_such(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: no such model directory"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        load_model("./not/here")


def test_a_directory_that_is_not_a_model_gives_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="could not load"):
        load_model(tmp_path)


def test_dtype_follows_the_device():
    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="float32"):
        pick_dtype(torch.device("cpu"), "int8")


def test_lora_adapters_train_only_the_adapters(qwen2_dir):
    pytest.importorskip("peft")
    from r1lab.llm.loading import LoraSettings

    loaded = load_model(qwen2_dir, lora=LoraSettings(rank=4))
    trainable = [n for n, p in loaded.policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n in trainable)


def test_gradient_checkpointing_gives_the_same_logprobs(qwen2_dir):
    from r1lab.llm.generation import SamplingSettings, generate
    from r1lab.llm.logprobs import token_logprobs

    plain, checkpointed = load_model(qwen2_dir), load_model(qwen2_dir, gradient_checkpointing=True)
    prompts = ["What is 1+2?"] * 2 + ["Hello"] * 2
    out = generate(plain.policy, plain.tokenizer, prompts, SamplingSettings(max_new_tokens=6),
                   torch.Generator().manual_seed(0))
    checkpointed.policy.train()
    args = (out.prompt_ids, out.prompt_mask, out.completion_ids, out.completion_mask)
    expected, _ = token_logprobs(plain.policy, *args)
    got, _ = token_logprobs(checkpointed.policy, *args)
    got.sum().backward()
    torch.testing.assert_close(got.detach(), expected.detach(), atol=2e-5, rtol=0)
    assert all(p.grad is not None for p in checkpointed.policy.parameters() if p.requires_grad)
