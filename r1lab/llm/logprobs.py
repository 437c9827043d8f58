"""Per-token log-probs (and entropy) of given completions under a model, over completion positions only.

Prompts are left-padded and completions right-padded, so every completion starts at the same
column P. Only the logits that predict completion tokens are computed (`logits_to_keep`), and
the batch is split into row chunks, so memory is bounded by chunk x T x vocab, never B x (P+T) x vocab.
"""

from __future__ import annotations

import torch

from r1lab.core import categorical_entropy


def sequence_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (left padding gets 0)."""
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)


def token_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int | None = None,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(logits / T) at each completion token, (B, T), zero where the mask is 0.

    Differentiable when called with gradients enabled; `with_entropy` also returns the entropy
    of softmax(logits / T) at each completion position (B, T), computed without gradient.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask.to(prompt_mask.dtype)], dim=1)
    positions = sequence_positions(attention_mask)
    width = completion_ids.shape[1]
    chunk_size = chunk_size or input_ids.shape[0]
    logprob_chunks, entropy_chunks = [], []
    for start in range(0, input_ids.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        logits = model(input_ids=input_ids[rows], attention_mask=attention_mask[rows], position_ids=positions[rows],
                       use_cache=False, logits_to_keep=width + 1).logits[:, :-1].float()
        if temperature != 1.0:
            logits = logits / temperature
        targets = completion_ids[rows].unsqueeze(-1)
        logprob_chunks.append(logits.gather(-1, targets).squeeze(-1) - logits.logsumexp(-1))
        if with_entropy:
            with torch.no_grad():
                entropy_chunks.append(categorical_entropy(logits))
    logprobs = torch.cat(logprob_chunks) * completion_mask
    entropy = torch.cat(entropy_chunks) * completion_mask if with_entropy else None
    return logprobs, entropy
