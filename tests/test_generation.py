"""Generation: fast, and numerically the same model as the training forward."""

import pytest
import torch

from r1lab.llm.decoding import HFCacheDecoder, StaticCacheDecoder, make_decoder
from r1lab.llm.generation import SamplingSettings, generate, sample_next
from r1lab.llm.loading import load_model
from r1lab.llm.logprobs import token_logprobs

PROMPTS = ["What is 12+5?", "Q: What is 347+85?\nA:", "7+1=", "Write a short greeting for Anna."]


@pytest.fixture(scope="module", params=["qwen2_dir", "gpt2_dir"])
def loaded(request):
    return load_model(request.getfixturevalue(request.param))


def test_each_architecture_gets_the_expected_decoder(qwen2_dir, gpt2_dir):
    assert isinstance(make_decoder(load_model(qwen2_dir).policy, 2, 8), StaticCacheDecoder)
    assert isinstance(make_decoder(load_model(gpt2_dir).policy, 2, 8), HFCacheDecoder)


def test_generation_logprobs_equal_the_training_forward(loaded):
    generator = torch.Generator().manual_seed(0)
    out = generate(loaded.policy, loaded.tokenizer, PROMPTS * 2, SamplingSettings(max_new_tokens=24, temperature=0.7),
                   generator)
    logprobs, entropy = token_logprobs(loaded.policy, out.prompt_ids, out.prompt_mask, out.completion_ids,
                                       out.completion_mask, temperature=0.7, with_entropy=True, chunk_size=3)
    assert out.completion_mask.sum() > 0
    torch.testing.assert_close(logprobs, out.logprobs, atol=2e-5, rtol=0)
    assert (entropy[out.completion_mask.bool()] > 0).all()


def test_greedy_generation_matches_transformers_generate(loaded):
    tokenizer, model = loaded.tokenizer, loaded.policy
    ours = generate(model, tokenizer, PROMPTS, SamplingSettings(max_new_tokens=20, temperature=0))
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    theirs = model.generate(**batch, max_new_tokens=20, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.batch_decode(theirs[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert ours.texts == expected


def test_left_padding_does_not_change_a_prompts_completion(loaded):
    settings = SamplingSettings(max_new_tokens=16, temperature=0)
    alone = generate(loaded.policy, loaded.tokenizer, [PROMPTS[2]], settings).texts[0]
    batched = generate(loaded.policy, loaded.tokenizer, PROMPTS, settings).texts[2]
    assert alone == batched


def test_completion_mask_ends_at_eos_and_truncation_is_flagged(qwen2_dir):
    loaded = load_model(qwen2_dir)
    free = generate(loaded.policy, loaded.tokenizer, PROMPTS, SamplingSettings(max_new_tokens=8, temperature=0))
    stop_id = int(free.completion_ids[0, 2])  # make the third token of the first completion an EOS
    loaded.policy.generation_config.eos_token_id = stop_id
    out = generate(loaded.policy, loaded.tokenizer, PROMPTS, SamplingSettings(max_new_tokens=8, temperature=0))
    assert int(out.completion_mask[0].sum()) <= 3
    for row in range(len(PROMPTS)):
        length = int(out.completion_mask[row].sum())
        ids = out.completion_ids[row, :length].tolist()
        assert stop_id not in ids[:-1]
        assert (ids[-1] == stop_id) != bool(out.truncated[row])
        assert out.logprobs[row, length:].abs().sum() == 0


def test_stop_strings_end_a_completion(qwen2_dir):
    loaded = load_model(qwen2_dir)
    free = generate(loaded.policy, loaded.tokenizer, PROMPTS, SamplingSettings(max_new_tokens=30, temperature=0))
    text = free.texts[0]
    stop = text[3:6] if len(text) > 6 else text[:2]
    out = generate(loaded.policy, loaded.tokenizer, PROMPTS[:1],
                   SamplingSettings(max_new_tokens=30, temperature=0, stop_strings=(stop,)))
    assert stop in out.texts[0] and len(out.texts[0]) <= len(text)
    assert not out.truncated[0]


def test_top_k_and_top_p_only_sample_allowed_tokens():
    logits = torch.tensor([[4.0, 3.0, 2.0, -1.0, -2.0]]).repeat(2000, 1)
    top_k, _ = sample_next(logits, SamplingSettings(temperature=1.0, top_k=2))
    assert set(top_k.tolist()) == {0, 1}
    probs = torch.softmax(logits[0], -1)  # 0.66, 0.24, 0.09, ...: a 0.8 nucleus holds tokens 0 and 1
    top_p, _ = sample_next(logits, SamplingSettings(temperature=1.0, top_p=0.8))
    assert set(top_p.tolist()) == {0, 1} and probs[:2].sum() > 0.8
    greedy, logprob = sample_next(logits[:1], SamplingSettings(temperature=0))
    assert greedy.item() == 0 and torch.isclose(logprob, torch.log(probs[0]))


def test_sampling_follows_the_temperature_scaled_distribution():
    logits = torch.tensor([[1.0, 0.0, -1.0]]).repeat(20000, 1)
    generator = torch.Generator().manual_seed(0)
    tokens, logprobs = sample_next(logits, SamplingSettings(temperature=2.0), generator)
    expected = torch.softmax(logits[0] / 2.0, -1)
    observed = torch.bincount(tokens, minlength=3).float() / len(tokens)
    torch.testing.assert_close(observed, expected, atol=0.015, rtol=0)
    torch.testing.assert_close(logprobs, expected.log()[tokens])


def test_bad_sampling_settings_are_rejected():
    with pytest.raises(ValueError, match="top_p"):
        SamplingSettings(top_p=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        SamplingSettings(max_new_tokens=0)


def test_shared_prompt_pass_gives_the_plain_forwards_logprobs_and_gradient(loaded):
    prompts = [p for p in PROMPTS[:3] for _ in range(3)]  # groups of three completions per prompt
    out = generate(loaded.policy, loaded.tokenizer, prompts, SamplingSettings(max_new_tokens=12),
                   torch.Generator().manual_seed(1))
    results = []
    for share in (True, False):
        loaded.policy.zero_grad()
        logprobs, _ = token_logprobs(loaded.policy, out.prompt_ids, out.prompt_mask, out.completion_ids,
                                     out.completion_mask, share_prompts=share)
        logprobs.sum().backward()
        results.append((logprobs.detach(), torch.cat([p.grad.flatten() for p in loaded.policy.parameters()])))
    torch.testing.assert_close(results[0][0], results[1][0], atol=2e-5, rtol=0)
    torch.testing.assert_close(results[0][1], results[1][1], atol=2e-5, rtol=1e-4)


def test_a_lora_model_samples_from_its_adapted_weights(qwen2_dir):
    pytest.importorskip("peft")
    from r1lab.llm.loading import LoraSettings

    loaded = load_model(qwen2_dir, lora=LoraSettings(rank=4))
    torch.manual_seed(0)
    with torch.no_grad():  # adapters start as a no-op (B = 0); make them change the model
        for name, parameter in loaded.policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    tokenizer, model = loaded.tokenizer, loaded.policy
    assert isinstance(make_decoder(model, 2, 8), HFCacheDecoder)
    ours = generate(model, tokenizer, PROMPTS, SamplingSettings(max_new_tokens=12, temperature=0))
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    theirs = model.generate(**batch, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert ours.texts == tokenizer.batch_decode(theirs[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    with model.disable_adapter():  # and the adapters do change what is sampled
        base = generate(model, tokenizer, PROMPTS, SamplingSettings(max_new_tokens=12, temperature=0))
    assert base.texts != ours.texts


def test_repeated_prompts_in_any_order_sample_from_the_model_as_the_training_forward_scores_it():
    # the bundled model ends its answers at different lengths, so finished rows leave the batch
    # mid-way; the repeats are interleaved, not side by side
    loaded = load_model("tiny")
    questions = ["What is 12+5?", "What is 347+85?", "Compute 908-19.", "What is 4+4?"]
    prompts = [f"{q}" for _ in range(6) for q in questions]
    out = generate(loaded.policy, loaded.tokenizer, prompts, SamplingSettings(max_new_tokens=48),
                   torch.Generator().manual_seed(3))
    lengths = out.lengths
    assert lengths.min() < lengths.max()  # rows did finish at different steps
    logprobs, _ = token_logprobs(loaded.policy, out.prompt_ids, out.prompt_mask, out.completion_ids,
                                 out.completion_mask, share_prompts=False)
    torch.testing.assert_close(logprobs, out.logprobs, atol=5e-5, rtol=0)
    greedy = generate(loaded.policy, loaded.tokenizer, prompts, SamplingSettings(max_new_tokens=48, temperature=0))
    alone = generate(loaded.policy, loaded.tokenizer, questions, SamplingSettings(max_new_tokens=48, temperature=0))
    assert greedy.texts == alone.texts * 6
