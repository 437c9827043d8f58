"""Reward models: a seeded short run learns, the saved model is plain transformers', bad data is one clear error,
and the `r1lab.rewards` adapter scores whole replies or only R1's summary."""

import json

import pytest
import torch
from typer.testing import CliRunner

from r1lab.cli import app
from r1lab.llm.reward_model import check_reward_model, load_reward_model, sequence_scores
from r1lab.llm.reward_model_training import read_preference_pairs, train_reward_model
from r1lab.llm.rlhf_config import RewardModelConfig
from r1lab.rewards.reward_model import reward_model_function, reward_model_reward


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny model's trunk trained for 40 steps on 1,000 helpfulness pairs (half of them near misses)."""
    run_dir = tmp_path_factory.mktemp("rm")
    config = RewardModelConfig(data="helpful", steps=40, lr=3e-4, train_pairs=1000, eval_pairs=200, eval_every=20,
                               normalization_pairs=200, checkpoint_every=1000)
    return run_dir, train_reward_model(config, run_dir, quiet=True)


def test_pairwise_accuracy_rises_on_a_seeded_short_run(trained):
    run_dir, summary = trained
    assert summary["eval_accuracy"] >= 0.8 > summary["eval_accuracy_first"] + 0.1
    assert summary["eval_margin"] > 1.0
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["eval_accuracy"] == summary["eval_accuracy"] and "eval_margin" in written
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals if "eval/accuracy" in e] == [0, 20, 40]


def test_the_saved_model_is_a_plain_one_label_sequence_classifier_with_its_statistics(trained):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run_dir, summary = trained
    config = check_reward_model(run_dir / "model")
    assert config["r1lab_reward_mean"] == pytest.approx(summary["reward_mean"])
    assert config["r1lab_reward_std"] == pytest.approx(summary["reward_std"]) and summary["reward_std"] > 0
    plain = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    assert plain.config.num_labels == 1
    ours = load_reward_model(run_dir / "model")
    prompts = ["User: Say hello to Ben.\nAssistant:", "User: What color is snow?\nAssistant:"]
    replies = [" Hello Ben, it is great to see you!", " It is white."]
    for prompt, reply, score in zip(prompts, replies, ours.score_texts(prompts, replies)):
        ids = tokenizer(prompt + reply)["input_ids"] + [tokenizer.eos_token_id]
        assert plain(torch.tensor([ids])).logits.item() == pytest.approx(score.item(), abs=1e-4)


def test_scores_do_not_depend_on_padding(trained):
    model = load_reward_model(trained[0] / "model").model
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    batched = sequence_scores(model, ids, mask)
    alone = sequence_scores(model, ids[1:, :2], mask[1:, :2])
    assert batched[1].item() == pytest.approx(alone.item(), abs=1e-5)


def test_margins_come_from_a_data_column_and_lists_of_rows_act_as_datasets():
    rows = [{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "margin": 2},
            {"prompt": "Say hi.", "chosen": "Hello!", "rejected": "Go away."}]
    pairs = read_preference_pairs(rows)
    assert [p["margin"] for p in pairs] == [2.0, None]


@pytest.mark.parametrize(("line", "message"), [
    ('{"prompt": "Say hi.", "chosen": "", "rejected": "No."}', r"pairs.jsonl:2: 'chosen' is empty"),
    ('{"prompt": "Say hi.", "chosen": "Hi!"}', r"pairs.jsonl:2: missing field 'rejected' \(has prompt, chosen\)"),
    ('{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "margin": "big"}', r"'margin' must be a number"),
])
def test_a_bad_pair_stops_with_its_file_and_line(tmp_path, line, message):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        train_reward_model(RewardModelConfig(data=str(data)), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()  # nothing is left behind by a job that could not start


def test_a_path_that_is_not_a_reward_model_is_one_clear_error(tmp_path):
    from r1lab.llm.loading import tiny_model_path

    with pytest.raises(ValueError, match="is not a reward model: its config says LlamaForCausalLM"):
        check_reward_model(tiny_model_path())
    with pytest.raises(FileNotFoundError, match="not a reward model directory"):
        check_reward_model(tmp_path)
    result = CliRunner().invoke(app, ["rlhf", "--reward-model", str(tiny_model_path()), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "error:" in result.output and "is not a reward model" in result.output
    assert not (tmp_path / "r").exists()


def test_the_cli_trains_and_reports_accuracy(tmp_path):
    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"Say hi to {n}.", "chosen": f"Hello {n}!", "rejected": "Go away."} for n in "ABCDEFGHIJKL"]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["reward-model", "--data", str(data), "--steps", "3", "--batch-size", "4",
                                      "--run-dir", str(tmp_path / "run"), "--quiet", "--set", "eval_share=0.25"])
    assert result.exit_code == 0, result.output
    assert "held-out pairwise accuracy" in result.output
    assert check_reward_model(tmp_path / "run" / "model")["architectures"] == ["LlamaForSequenceClassification"]


# ---------------------------------------------------------------- the rewards adapter


def test_the_adapter_scores_batches_normalised(trained):
    path = trained[0] / "model"
    reward = reward_model_reward(path)
    raw = reward_model_reward(path, normalize=False)
    prompts = ["User: What color is snow?\nAssistant:"] * 3
    replies = [" A snow is usually white.", " It is blue.", " Go away."]
    values = reward(prompts, replies, answer=["", "", ""])
    model = reward.reward_model
    assert values == pytest.approx([(v - model.mean) / model.std for v in raw(prompts, replies)], abs=1e-5)
    assert values[0] > values[1] and values[0] > values[2]


def test_summary_only_scores_the_part_after_the_reasoning(trained):
    path = trained[0] / "model"
    whole, summary = reward_model_reward(path), reward_model_reward(path, summary_only=True)
    prompt = ["User: What color is snow?\nAssistant:"]
    r1_reply = [" <think> snow is cold and bright </think> A snow is usually white."]
    assert summary(prompt, r1_reply) == pytest.approx(whole(prompt, [" A snow is usually white."]), abs=1e-5)
    assert summary(prompt, [" <think> still thinking"]) == [None]  # no summary: not applicable
    function = reward_model_function(path, name="helpful_rm", summary_only=True)
    assert function.isolation == "thread" and function.timeout is None
    assert function(prompt, r1_reply, {}) == pytest.approx(summary(prompt, r1_reply))


def test_mismatched_pairs_reject_a_good_answer_to_another_request():
    from r1lab.llm.reward_model_training import with_mismatched_pairs

    pairs = read_preference_pairs("helpful", count=50)
    augmented = with_mismatched_pairs(pairs, 0.5, seed=0)
    assert augmented[:50] == pairs and len(augmented) == 75
    chosen_of = {p["prompt"]: {q["chosen"] for q in pairs if q["prompt"] == p["prompt"]} for p in pairs}
    for extra in augmented[50:]:
        assert extra["chosen"] in chosen_of[extra["prompt"]]
        assert extra["rejected"] in {p["chosen"] for p in pairs} - chosen_of[extra["prompt"]]
