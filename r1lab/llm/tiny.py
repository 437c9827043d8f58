"""The tiny world's tokenizer and base model: built, pretrained and saved by `r1lab pretrain-tiny`.

The tokenizer is a byte-level BPE from the `tokenizers` library (every byte, so every CJK
character, is covered), with digits split one per token (numbers decode without stray spaces
and arithmetic is digit by digit) and the R1-Zero tags as single, non-special added tokens
(so `skip_special_tokens=True` keeps them). The R1-Zero template's instruction (its first four
lines, up to "i.e., ") is one added token too: the template is in a fifth of the corpus, and
spelling those ~65 tokens out in every such document and every RL prompt would spend a fifth of
pretraining on text that never changes. The rest of the template (the example of the format,
"User:", the question, "Assistant:") stays words: a prompt's first token is where a model parks
attention it does not need, and a template known only from its first token was not recognised
well enough (the base model answered in tags greedily, though the corpus does so in one
template answer in five). The model is a small Llama from a `transformers` config, so both
load with `AutoTokenizer` / `AutoModelForCausalLM.from_pretrained`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from r1lab.runs import require, warmup_then_decay
from r1lab.tasks.corpus import CorpusMix, documents
from r1lab.tasks.templates import R1_ZERO_INSTRUCTION, TAGS

EOS, PAD = "<|endoftext|>", "<|pad|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% else %}{{ message['content'] + '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


@dataclass
class TinyModelConfig:
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 384
    max_positions: int = 512


@dataclass
class PretrainConfig:
    """`r1lab pretrain-tiny`: tokenizer size, model shape, corpus mix and the optimiser schedule."""

    seed: int = 0
    vocab_size: int = 1024
    tokenizer_documents: int = 20000
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    corpus: CorpusMix = field(default_factory=CorpusMix)  # the shares of every document kind and style
    steps: int = 2000
    batch_size: int = 18
    sequence_length: int = 512
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 50
    checkpoint_every: int = 500
    eval_items: int = 200
    threads: int = 1  # one thread: a run does not depend on how many cores it finds, and on a busy 2-core
    # machine two threads are no faster (they wait on each other)

    def __post_init__(self):
        require(self.vocab_size >= 300, "vocab_size", "must be >= 300 (256 bytes plus merges)")
        require(self.steps >= 1 and self.batch_size >= 1, "steps", "and batch_size must be >= 1")
        require(self.sequence_length >= 32, "sequence_length", "must be >= 32")
        require(self.lr > 0, "lr", "must be > 0")


def build_tokenizer(texts, vocab_size: int):
    """Train a byte-level BPE on `texts` and wrap it as a `transformers` fast tokenizer."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS, PAD], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((text.replace(R1_ZERO_INSTRUCTION, "") for text in texts), trainer=trainer)
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in (*TAGS, R1_ZERO_INSTRUCTION)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD,
                                      clean_up_tokenization_spaces=False)
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.padding_side = "left"
    return wrapped


def build_model(config: TinyModelConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    model_config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, num_key_value_heads=config.heads,
        intermediate_size=config.intermediate_size, max_position_embeddings=config.max_positions,
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )
    return LlamaForCausalLM(model_config)


def packed_batches(tokenizer, seed: int, batch_size: int, length: int, mix: CorpusMix | None = None):
    """Endless (input_ids, labels) batches: whole documents packed into rows that start at a
    document's first token (as prompts do at inference), the tail padded and ignored by the loss."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    stream = documents(seed, mix)
    pending: list[int] | None = None
    while True:
        rows = []
        for _ in range(batch_size):
            row: list[int] = []
            while True:
                if pending is None:
                    pending = tokenizer(next(stream)[1])["input_ids"][: length - 1] + [eos]
                if row and len(row) + len(pending) > length:
                    break
                row += pending
                pending = None
            rows.append(row)
        input_ids = torch.full((batch_size, length), pad, dtype=torch.long)
        labels = torch.full((batch_size, length), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            labels[i, : len(row)] = torch.tensor(row)
        yield input_ids, labels


def learning_rate(step: int, config: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio * lr`."""
    return config.lr * warmup_then_decay(step, config.steps, config.warmup_steps, "cosine", config.min_lr_ratio)


def tokenizer_texts(config: PretrainConfig) -> list[str]:
    stream = documents(config.seed + 10_000, config.corpus)
    return [text for _, text in itertools.islice(stream, config.tokenizer_documents)]
