"""Per-token log-probs (and entropy) of given completions under a model, over completion positions only.

Prompts are left-padded and completions right-padded, so every completion starts at the same
column P. Only the logits that predict completion tokens are computed (`logits_to_keep`), and
the batch is split into row chunks, so memory is bounded by chunk x T x vocab, never B x (P+T) x vocab.

When rows repeat a prompt (a GRPO group is G completions of one prompt), the prompt runs once:
its keys and values are computed for the distinct prompts and indexed out to their rows, and
only the completions run per row. Gradients flow back through the indexing into the one
prompt pass, so the numbers and the gradient are those of the plain forward (tested), for
about G times less prompt work.

`PromptPass` does the same across micro-batches: the batch's distinct prompts run once, and
each micro-batch runs only its completions against them, so micro-batches can be cut by
completion length (little padding) without running a prompt once per micro-batch it has rows
in. With gradients, the pass's outputs are leaves whose gradients the micro-batches' backward
passes accumulate; `PromptPass.backward()` then carries them through the prompt pass, once.
"""

from __future__ import annotations

import torch

from r1lab.core import categorical_entropy
from r1lab.llm.decoding import cache_argument
from r1lab.llm.packing import pack, packed_states
from r1lab.llm.precision import autocast


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
    share_prompts: bool = True,
    padding_free: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(logits / T) at each completion token, (B, T), zero where the mask is 0.

    Differentiable when called with gradients enabled; `with_entropy` also returns the entropy
    of softmax(logits / T) at each completion position (B, T), computed without gradient. The
    forward runs in the model's compute dtype (autocast over fp32 weights); the log-softmax in fp32.
    `padding_free` packs the rows' real tokens end to end (`r1lab.llm.packing`): the same numbers
    without computing the padding.
    """
    chunk_size = chunk_size or prompt_ids.shape[0]
    logprob_chunks, entropy_chunks = [], []
    for start in range(0, prompt_ids.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        with autocast(model):
            if padding_free:
                logits = packed_completion_logits(model, prompt_ids[rows], prompt_mask[rows], completion_ids[rows],
                                                  completion_mask[rows])
            else:
                logits = completion_logits(model, prompt_ids[rows], prompt_mask[rows], completion_ids[rows],
                                           completion_mask[rows], share_prompts)
        logits = logits.float()
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


def completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask, share_prompts=True):
    """Logits that predict each completion token, (B, T, vocab)."""
    attention_mask = torch.cat([prompt_mask, completion_mask.to(prompt_mask.dtype)], dim=1)
    positions = sequence_positions(attention_mask)
    width, prompt_width = completion_ids.shape[1], prompt_ids.shape[1]
    distinct, copy_of = torch.unique(torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], dim=1), dim=0,
                                     return_inverse=True)
    if not share_prompts or distinct.shape[0] == prompt_ids.shape[0] or not _takes_cache(model):
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False,
                     logits_to_keep=width + 1).logits[:, :-1]
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    distinct_mask = distinct[:, prompt_width:].to(prompt_mask.dtype)
    prefix = model(input_ids=distinct[:, :prompt_width], attention_mask=distinct_mask,
                   position_ids=sequence_positions(distinct_mask), use_cache=True, logits_to_keep=1,
                   **{cache_argument(model): cache})
    cache.batch_select_indices(copy_of)  # each row gets its prompt's keys and values (differentiably)
    rest = model(input_ids=completion_ids, attention_mask=attention_mask, position_ids=positions[:, prompt_width:],
                 use_cache=True, **{cache_argument(model): cache})
    return torch.cat([prefix.logits[copy_of], rest.logits[:, :-1]], dim=1)


def packed_completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask):
    """`completion_logits` from one padding-free forward of the rows' real tokens (B, T, vocab).
    The LM head sees the states at P - 1 ... P + T - 1, as in the plain path (`logits_to_keep =
    T + 1`), so a hook on it (the shared critic's `HeadRecorder`) records the same tensors."""
    states = packed_states(model.get_decoder(), pack(prompt_ids, prompt_mask, completion_ids, completion_mask))
    return model.get_output_embeddings()(states)[:, :-1]


def _takes_cache(model) -> bool:
    # gradient checkpointing recomputes layers without a cache; such models take the plain path
    checkpointing = getattr(model, "is_activation_checkpointing", None)
    if checkpointing is None:  # transformers before the rename
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    return not checkpointing


class PromptPass:
    """The distinct prompts of a batch, run once: every layer's keys and values, and the logits
    that predict each row's first completion token. Rows are the batch's rows; `copy_of[row]` is
    the distinct prompt a row continues."""

    def __init__(self, model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, requires_grad: bool):
        from transformers import DynamicCache

        self.model, self.prompt_mask = model, prompt_mask
        width = prompt_ids.shape[1]
        distinct, self.copy_of = torch.unique(torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], dim=1),
                                              dim=0, return_inverse=True)
        distinct_mask = distinct[:, width:].to(prompt_mask.dtype)
        cache = DynamicCache(config=model.config)
        with torch.set_grad_enabled(requires_grad), autocast(model):
            out = model(input_ids=distinct[:, :width], attention_mask=distinct_mask,
                        position_ids=sequence_positions(distinct_mask), use_cache=True, logits_to_keep=1,
                        **{cache_argument(model): cache})
        self.outputs = [t for layer in cache.layers for t in (layer.keys, layer.values)] + [out.logits[:, -1]]
        # the micro-batches read detached leaves: their backward passes stop here and accumulate
        self.leaves = [t.detach().requires_grad_(requires_grad) for t in self.outputs]

    def cache_for(self, rows: torch.Tensor):
        """A cache holding the prompt keys and values of these rows, ready for their completions."""
        from transformers import DynamicCache

        cache, prompts = DynamicCache(config=self.model.config), self.copy_of[rows]
        for layer in range(len(self.leaves) // 2):
            cache.update(self.leaves[2 * layer][prompts], self.leaves[2 * layer + 1][prompts], layer)
        return cache

    def first_logits(self, rows: torch.Tensor) -> torch.Tensor:
        return self.leaves[-1][self.copy_of[rows]]

    def backward(self) -> None:
        """Carry the gradients the micro-batches left on the leaves through the prompt pass."""
        pairs = [(out, leaf.grad) for out, leaf in zip(self.outputs, self.leaves) if leaf.grad is not None]
        if pairs:
            torch.autograd.backward([out for out, _ in pairs], [grad for _, grad in pairs])


def completion_logprobs_after(prompts: PromptPass, rows: torch.Tensor, completion_ids: torch.Tensor,
                              completion_mask: torch.Tensor, *, temperature: float = 1.0,
                              with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`token_logprobs` of these rows' completions (B_rows, T), their prompts taken from `prompts`."""
    model = prompts.model
    attention_mask = torch.cat([prompts.prompt_mask[rows], completion_mask.to(prompts.prompt_mask.dtype)], dim=1)
    positions = sequence_positions(attention_mask)[:, prompts.prompt_mask.shape[1]:]
    with autocast(model):
        rest = model(input_ids=completion_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                     **{cache_argument(model): prompts.cache_for(rows)})
    logits = torch.cat([prompts.first_logits(rows)[:, None], rest.logits[:, :-1]], dim=1).float()
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = (logits.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)) * completion_mask
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = categorical_entropy(logits) * completion_mask
    return logprobs, entropy


def shares_prompts(model) -> bool:
    """Whether `PromptPass` can serve this model (a model that checkpoints activations cannot take a cache)."""
    return _takes_cache(model)
