"""The language-model jobs through the `r1lab` command: each writes its summary, bad input is one clear line."""

import json

import torch
from typer.testing import CliRunner

from r1lab.cli import app

runner = CliRunner()
TINY_RECIPE = ["--set", "steps=3", "--set", "batch_size=2", "--set", "sequence_length=64", "--set",
               "tokenizer_documents=300", "--set", "model.hidden_size=32", "--set", "model.layers=1",
               "--set", "model.intermediate_size=64", "--set", "log_every=1", "--set", "vocab_size=320"]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.output


def test_pretrain_tiny_is_deterministic_from_its_seed(tmp_path):
    states = []
    for name in ("a", "b"):
        result, output = invoke("pretrain-tiny", "--run-dir", tmp_path / name, "--quiet", *TINY_RECIPE)
        assert result.exit_code == 0, output
        from safetensors.torch import load_file

        states.append(load_file(tmp_path / name / "model" / "model.safetensors"))
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["steps"] == 3 and summary["final_loss"] > 0
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_installing_a_pretrained_model_writes_its_card(tmp_path):
    from r1lab.pipelines.tiny_model_card import install_tiny_model

    result, output = invoke("pretrain-tiny", "--run-dir", tmp_path / "run", "--quiet", *TINY_RECIPE,
                            "--set", "eval_items=8")
    assert result.exit_code == 0, output
    destination = install_tiny_model(tmp_path / "run", destination=tmp_path / "card", quiet=True)
    card = json.loads((destination / "evaluation.json").read_text())
    assert card["evaluation"]["r1_zero_template"]["items"] == 8 and card["summary"]["steps"] == 3
    assert "model_dir" not in card["summary"]  # no path of the machine it was built on
    readme = (destination / "README.md").read_text()
    assert "r1lab pretrain-tiny --seed 0 --install" in readme and "8 held-out questions" in readme
    assert (destination / "model.safetensors").exists() and (destination / "tokenizer.json").exists()


def test_generate_reports_tokens_per_second(qwen2_dir, tmp_path):
    result, output = invoke("generate", "--model", qwen2_dir, "--prompt", "What is 2+3?", "--num", "2",
                            "--max-new-tokens", "6", "--run-dir", tmp_path)
    assert result.exit_code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["tokens_per_second"] > 0 and len(summary["completions"]) == 2


def test_eval_llm_writes_the_metrics(qwen2_dir, tmp_path):
    result, output = invoke("eval-llm", "--model", qwen2_dir, "--items", "6", "--k", "2", "--max-new-tokens", "8",
                            "--run-dir", tmp_path)
    assert result.exit_code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("accuracy", "pass_at_k", "format_rate", "mean_length", "mixing_rate"):
        assert 0 <= summary[key] <= (8 if key == "mean_length" else 1)


def test_grpo_runs_and_summarises(qwen2_dir, tmp_path):
    result, output = invoke("grpo", "--model", qwen2_dir, "--steps", "2", "--group-size", "2", "--prompts-per-step", "2",
                            "--max-new-tokens", "6", "--run-dir", tmp_path, "--quiet", "--set", "eval_items=4",
                            "--set", "eval_k=2")
    assert result.exit_code == 0, output
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("seconds_per_step_median", "reward_first", "reward_last", "final_evaluation", "before", "after"):
        assert key in summary


def test_sft_runs_from_a_jsonl_file(qwen2_dir, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{i}+1=", "completion": str(i + 1)}) + "\n" for i in range(20)))
    result, output = invoke("sft", "--model", qwen2_dir, "--data", data, "--max-steps", "2", "--run-dir", tmp_path / "r",
                            "--quiet", "--set", "batch_size=4")
    assert result.exit_code == 0, output
    assert (tmp_path / "r" / "model" / "config.json").exists()


def test_bad_input_is_one_clear_line(qwen2_dir, tmp_path):
    cases = [
        (["r1-zero", "--group-size", "1", "--run-dir", tmp_path / "a"], "group_size"),
        (["r1-zero", "--set", "lr_shedule=linear", "--run-dir", tmp_path / "b"], "unknown key 'lr_shedule'"),
        (["r1-zero", "--loss-type", "ppo", "--run-dir", tmp_path / "c"], "'ppo' is not one of"),
        (["grpo", "--model", qwen2_dir, "--rewards", "accuracy,speling", "--run-dir", tmp_path / "d"],
         "unknown reward 'speling'"),
        (["eval-llm", "--model", tmp_path / "missing", "--run-dir", tmp_path / "e"], "no such model directory"),
        (["sft", "--data", tmp_path / "none.jsonl", "--run-dir", tmp_path / "f"], "no such SFT data file"),
    ]
    for args, message in cases:
        result, output = invoke(*args)
        assert result.exit_code == 2, output
        assert message in output and "Traceback" not in output
