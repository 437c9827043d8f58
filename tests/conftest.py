"""Shared fixtures: small randomly initialised models saved with `save_pretrained`, so the plumbing
is tested through the same `from_pretrained` path a hub model takes, on more than one architecture."""

import itertools

import pytest
import torch

from r1lab.llm.tiny import build_tokenizer
from r1lab.tasks.corpus import documents


@pytest.fixture(autouse=True)
def torch_threads_as_the_process_started():
    """Each test starts with torch's own thread count: a policy-gradient job sets 1 (fastest for its
    small networks), and a later test run in the same process would otherwise train with 1 thread,
    on other float sums than the job run on its own (`r1lab rlhf`'s seeded figures differ)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_tokenizer():
    texts = [text for _, text in itertools.islice(documents(seed=123), 2000)]
    return build_tokenizer(texts, vocab_size=400)


def _save(model, tokenizer, path):
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def qwen2_dir(tmp_path_factory, small_tokenizer):
    """A Qwen2-architecture model with grouped-query attention: not the bundled model's config."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(small_tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=False, eos_token_id=small_tokenizer.eos_token_id,
                         pad_token_id=small_tokenizer.pad_token_id, bos_token_id=None)
    return _save(Qwen2ForCausalLM(config), small_tokenizer, tmp_path_factory.mktemp("qwen2"))


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory, small_tokenizer):
    """A GPT-2 model: an architecture outside the Llama family, served by the generic decoding path."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(small_tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=512,
                        eos_token_id=small_tokenizer.eos_token_id, bos_token_id=small_tokenizer.eos_token_id,
                        pad_token_id=small_tokenizer.pad_token_id)
    return _save(GPT2LMHeadModel(config), small_tokenizer, tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="session")
def small_config():
    """GRPO settings small enough for a test: 2 prompts x 4 samples of 8 tokens, 3 steps."""
    return make_small_config


def make_small_config(model_dir, **overrides):
    from r1lab.llm.grpo_config import GRPOConfig

    settings = dict(model=str(model_dir), group_size=4, prompts_per_step=2, max_new_tokens=8, steps=3,
                    micro_batch_size=8, checkpoint_every=100, log_samples_every=1, save_model=False, lr=1e-3)
    settings.update(overrides)
    return GRPOConfig(**settings)


@pytest.fixture(scope="session")
def grpo_batch(qwen2_dir):
    """Four groups of four sampled completions from the Qwen2 fixture, with made-up rewards."""
    from r1lab.llm import grpo as grpo_module
    from r1lab.llm.generation import SamplingSettings, generate
    from r1lab.llm.loading import load_model
    from r1lab.tasks import get_task

    loaded = load_model(qwen2_dir)
    items = get_task("arithmetic").items(4, "train")
    prompts = [item.question for item in items for _ in range(4)]
    out = generate(loaded.policy, loaded.tokenizer, prompts, SamplingSettings(max_new_tokens=10),
                   torch.Generator().manual_seed(0))
    rewards = torch.arange(16, dtype=torch.float32) % 3
    advantages = grpo_module.group_advantages(rewards, 4)
    return grpo_module.Batch(items, prompts, out, rewards, advantages)


