"""Batched sampling with a KV cache: left-padded prompts in, completions with masks and log-probs out.

The log-prob of each sampled token is log softmax(logits / T) at that token (T = 1 for greedy):
the same number `token_logprobs` computes for the same tokens, so GRPO's "old policy" log-probs
come free with generation. Top-p / top-k only choose which tokens can be sampled; as in TRL and
verl, they do not change the log-probs that training uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from r1lab.llm.decoding import make_decoder
from r1lab.llm.logprobs import sequence_positions
from r1lab.llm.prompts import encode_texts


@dataclass
class SamplingSettings:
    """max_new_tokens; temperature (0 = greedy); top_p (1 = off); top_k (0 = off); stop strings."""

    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop_strings: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f"need temperature >= 0, 0 < top_p <= 1, top_k >= 0; got {self.temperature}, "
                             f"{self.top_p}, {self.top_k}")


@dataclass
class Completions:
    """prompt_ids/prompt_mask (B, P), left-padded; completion_ids/completion_mask/logprobs (B, T),
    right-padded, the mask covering each completion up to and including its EOS or stop string."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor
    texts: list[str]
    truncated: torch.Tensor  # (B,) True where max_new_tokens ran out first

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(1)


def encode_prompts(tokenizer, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded token ids and attention mask of the prompts (BOS added where not already there)."""
    rows = encode_texts(tokenizer, prompts)
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


def stop_token_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


@torch.no_grad()  # not inference_mode: its tensors could not enter the training forward
def generate(model, tokenizer, prompts: list[str], settings: SamplingSettings,
             generator: torch.Generator | None = None) -> Completions:
    """Sample one completion per prompt (repeat prompts for groups).

    Each distinct prompt is prefilled once and its cache copied to its repeats: a GRPO batch of
    P prompts x G samples pays for P prefills, not P x G.
    """
    device = next(model.parameters()).device
    first_seen: dict[str, int] = {}
    copy_of = torch.tensor([first_seen.setdefault(p, len(first_seen)) for p in prompts], device=device)
    distinct_ids, distinct_mask = encode_prompts(tokenizer, list(first_seen), device)
    batch, (unique, prompt_length) = len(prompts), distinct_ids.shape
    total = prompt_length + settings.max_new_tokens
    decoder = make_decoder(model, batch, total)
    stops = torch.tensor(stop_token_ids(model, tokenizer), device=device)
    pad = tokenizer.pad_token_id

    distinct_valid = torch.ones(unique, total, dtype=torch.bool, device=device)
    distinct_valid[:, :prompt_length] = distinct_mask.bool()
    distinct_positions = sequence_positions(distinct_mask)
    logits = decoder.forward(distinct_ids, distinct_positions, distinct_valid)
    if unique < batch:
        decoder.keep_rows(copy_of)
        logits = logits[copy_of]
    prompt_ids, prompt_mask = distinct_ids[copy_of], distinct_mask[copy_of]
    valid, positions = distinct_valid[copy_of], distinct_positions[copy_of]
    tokens_out = torch.full((batch, settings.max_new_tokens), pad, dtype=torch.long, device=device)
    logprobs_out = torch.zeros(batch, settings.max_new_tokens, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    finished_by_stop = torch.zeros(batch, dtype=torch.bool, device=device)
    rows = torch.arange(batch, device=device)  # original row of each row still generating
    next_position = positions[:, -1:] + 1
    alive = torch.ones(batch, dtype=torch.bool, device=device)  # per row of the (shrinking) batch
    for step in range(settings.max_new_tokens):
        token, logprob = sample_next(logits.float(), settings, generator)
        tokens_out[rows, step] = token  # finished rows still write here; the mask hides it below
        logprobs_out[rows, step] = logprob
        lengths[rows] += alive.long()
        done = torch.isin(token, stops) & alive
        if settings.stop_strings:
            done |= _hit_stop_string(tokenizer, tokens_out, rows, step, settings.stop_strings) & alive
        finished_by_stop[rows[done]] = True
        alive &= ~done
        if step + 1 == settings.max_new_tokens or not bool(alive.any()):
            break
        if 4 * int((~alive).sum()) >= alive.numel():  # drop finished rows once they are a quarter of the batch
            keep = alive.nonzero().squeeze(1)
            decoder.keep_rows(keep)
            rows, token, next_position, valid, alive = rows[keep], token[keep], next_position[keep], valid[keep], alive[keep]
        logits = decoder.forward(token[:, None], next_position, valid)
        next_position = next_position + 1

    width = int(lengths.max())
    completion_ids = tokens_out[:, :width]
    completion_mask = torch.arange(width, device=device)[None] < lengths[:, None]
    texts = tokenizer.batch_decode(completion_ids.masked_fill(~completion_mask, pad), skip_special_tokens=True)
    return Completions(prompt_ids, prompt_mask, completion_ids, completion_mask.float(),
                       logprobs_out[:, :width] * completion_mask, texts, ~finished_by_stop)


def sample_next(logits: torch.Tensor, settings: SamplingSettings, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row from logits (B, V); return it and its log-prob under softmax(logits / T)."""
    if settings.temperature == 0:
        token = logits.argmax(-1)
        return token, torch.log_softmax(logits, -1).gather(1, token[:, None]).squeeze(1)
    logprobs = torch.log_softmax(logits / settings.temperature, -1)
    candidates = logprobs
    if settings.top_k:
        kth = candidates.topk(min(settings.top_k, candidates.shape[-1]), -1).values[:, -1:]
        candidates = candidates.masked_fill(candidates < kth, float("-inf"))
    if settings.top_p < 1:
        sorted_lp, order = candidates.sort(-1, descending=True)
        probs = sorted_lp.softmax(-1)
        outside = (probs.cumsum(-1) - probs) >= settings.top_p  # the nucleus keeps the first token past top_p
        drop = torch.zeros_like(outside).scatter(1, order, outside)
        candidates = candidates.masked_fill(drop, float("-inf"))
    # inverse-CDF sampling: one uniform number per row, not one per vocabulary entry
    cdf = (candidates - candidates.amax(-1, keepdim=True)).exp().cumsum(-1)
    uniform = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    token = torch.searchsorted(cdf, uniform, right=True).squeeze(1).clamp(max=cdf.shape[-1] - 1)
    return token, logprobs.gather(1, token[:, None]).squeeze(1)


def _hit_stop_string(tokenizer, tokens_out, rows, step, stop_strings) -> torch.Tensor:
    """True for rows whose completion now ends with a stop string (decoding only a short tail)."""
    tail = max(len(s) for s in stop_strings) + 4
    hits = []
    for row in rows.tolist():
        text = tokenizer.decode(tokens_out[row, max(0, step + 1 - tail) : step + 1])
        hits.append(any(s in text for s in stop_strings))
    return torch.tensor(hits, dtype=torch.bool, device=tokens_out.device)
