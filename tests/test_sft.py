"""SFT: loss on completion tokens only, accumulation equal to one big batch, resume, and it teaches."""

import json

import pytest
import torch

from r1lab.llm.loading import load_model
from r1lab.llm.sft import SFTConfig, collate, completion_loss_sum, encode_pairs, read_pairs, train_sft
from r1lab.pipelines.evaluate import EvalSettings, evaluate
from r1lab.tasks import ArithmeticTask
from r1lab.tasks.templates import tagged_response


def write_pairs(path, pairs):
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    return path


def worked_pairs(count, seed=0):
    task = ArithmeticTask(min_digits=1, max_digits=3)
    return [{"prompt": item.question, "completion": tagged_response(item.solution, item.answer)}
            for item in task.items(count, "train", seed)]


def test_labels_cover_the_completion_and_eos_only(small_tokenizer):
    examples = encode_pairs(small_tokenizer, [{"prompt": "What is 1+2?", "completion": " 3"}], "plain", 64)
    input_ids, mask, labels = collate(examples, small_tokenizer.pad_token_id)
    prompt_length = examples[0][1]
    assert (labels[0, :prompt_length] == -100).all()
    completion = small_tokenizer(" 3", add_special_tokens=False)["input_ids"] + [small_tokenizer.eos_token_id]
    assert labels[0, prompt_length:].tolist() == completion


def test_gradient_accumulation_equals_one_large_batch(qwen2_dir, tmp_path):
    loaded = load_model(qwen2_dir)
    examples = encode_pairs(loaded.tokenizer, worked_pairs(8), "plain", 128)
    pad = loaded.tokenizer.pad_token_id

    def gradient(chunks):
        loaded.policy.zero_grad()
        total = sum(len(ids) - p for chunk in chunks for ids, p in chunk)
        for chunk in chunks:
            loss, _ = completion_loss_sum(loaded.policy, *collate(chunk, pad))
            (loss / total).backward()
        return torch.cat([p.grad.flatten() for p in loaded.policy.parameters()])

    torch.testing.assert_close(gradient([examples]), gradient([examples[:3], examples[3:]]), atol=1e-6, rtol=1e-4)


def test_a_malformed_row_names_file_and_line(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(ValueError, match=r"sft.jsonl:2: needs a string 'completion' field"):
        read_pairs(path)


def test_a_prompt_longer_than_max_length_is_an_error_naming_the_pair(small_tokenizer):
    pairs = [{"prompt": "1+1?", "completion": " 2"}, {"prompt": "x" * 300, "completion": " y"}]
    with pytest.raises(ValueError, match="pair 2: the prompt alone is"):
        encode_pairs(small_tokenizer, pairs, "plain", 64)


def test_resume_reaches_the_same_weights(qwen2_dir, tmp_path):
    data = write_pairs(tmp_path / "d.jsonl", worked_pairs(40))
    config = SFTConfig(model=str(qwen2_dir), data=str(data), max_steps=4, batch_size=4, checkpoint_every=2,
                       eval_every=2, lr=1e-3)
    whole_summary = train_sft(config, tmp_path / "whole", quiet=True)
    assert train_sft(config, tmp_path / "cut", quiet=True, stop_after=2) == {"stopped_at": 2}
    resumed_summary = train_sft(config, tmp_path / "cut", quiet=True, resume=True)
    assert resumed_summary["eval_loss_first"] == pytest.approx(whole_summary["eval_loss_first"])  # the untrained model's
    whole = load_model(tmp_path / "whole" / "model").policy.state_dict()
    resumed = load_model(tmp_path / "cut" / "model").policy.state_dict()
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], atol=1e-6, rtol=0)


def test_sft_on_worked_solutions_raises_held_out_accuracy_under_the_template(tmp_path):
    data = write_pairs(tmp_path / "worked.jsonl", worked_pairs(600))
    held_out = ArithmeticTask(min_digits=1, max_digits=3).items(60, "test", seed=5)
    settings = EvalSettings(template="r1-zero", items=60, k=0, max_new_tokens=128)
    base = load_model("tiny")
    before = evaluate(base.policy, base.tokenizer, held_out, settings, ArithmeticTask())
    summary = train_sft(SFTConfig(data=str(data), template="r1-zero", max_steps=40, batch_size=16, lr=1e-3,
                                  eval_every=20), tmp_path / "run", quiet=True)
    tuned = load_model(summary["model_dir"])
    after = evaluate(tuned.policy, tuned.tokenizer, held_out, settings, ArithmeticTask())
    assert summary["eval_loss_last"] < summary["eval_loss_first"]
    assert after["format_rate"] > 0.9
    assert after["accuracy"] >= before["accuracy"] + 0.3
