"""Forward passes for sampling: a lean static-KV-cache path for Llama-family models, HF's otherwise.

`model.generate` pays for generality at every step: a fresh attention mask, a growing cache
made by concatenation, logits processors, stopping criteria. Sampling from a small model is
all per-step overhead, so for the Llama family (llama, mistral, qwen2, qwen3: the same blocks)
`StaticCacheDecoder` runs the model's own modules on a preallocated cache that each step writes
in place, and lets the sampler drop finished rows from the batch. Any other architecture goes
through `HFCacheDecoder`, the model's own forward with its dynamic cache; both give the same
logits (tested), so nothing above this file knows which one ran.
"""

from __future__ import annotations

import importlib
import inspect

import torch
import torch.nn.functional as F

LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3")


def make_decoder(model, batch_size: int, max_length: int):
    """The fastest decoder that supports this model."""
    base = getattr(model, "get_base_model", lambda: model)()  # peft wraps the model
    if StaticCacheDecoder.supports(base):
        return StaticCacheDecoder(base, batch_size, max_length)
    return HFCacheDecoder(model)


class StaticCacheDecoder:
    """Llama-family forward on a preallocated KV cache of shape (layers, B, kv_heads, max_length, head_dim)."""

    @staticmethod
    def supports(model) -> bool:
        config = model.config
        sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
        layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
        return (config.model_type in LLAMA_FAMILY and not sliding and layer_types == {"full_attention"}
                and getattr(config, "_attn_implementation", "sdpa") in ("sdpa", "eager"))

    def __init__(self, model, batch_size: int, max_length: int):
        self.model = model
        self.body = model.model
        config = model.config
        attention = self.body.layers[0].self_attn
        self.head_dim = attention.head_dim
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.scaling = attention.scaling
        modeling = importlib.import_module(type(model).__module__)
        self.apply_rope = modeling.apply_rotary_pos_emb
        parameter = next(model.parameters())
        shape = (len(self.body.layers), batch_size, self.kv_heads, max_length, self.head_dim)
        self.keys = torch.zeros(shape, dtype=parameter.dtype, device=parameter.device)
        self.values = torch.zeros_like(self.keys)
        self.length = 0  # positions of the cache filled so far

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits of the last position. tokens, positions (B, S); valid (B, length + S) marks real tokens."""
        batch, steps = tokens.shape
        start, end = self.length, self.length + steps
        hidden = self.body.embed_tokens(tokens)
        cos, sin = self.body.rotary_emb(hidden, positions)
        if steps > 1:  # prefill: causal within the new tokens, and never attend to padding
            causal = torch.ones(steps, end, dtype=torch.bool, device=tokens.device).tril(diagonal=start)
            mask = causal[None, None] & valid[:, None, None, :end]
        else:
            mask = None if bool(valid.all()) else valid[:, None, None, :end]
        for index, layer in enumerate(self.body.layers):
            attention = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = attention.q_proj(x).view(batch, steps, self.heads, self.head_dim)
            k = attention.k_proj(x).view(batch, steps, self.kv_heads, self.head_dim)
            if hasattr(attention, "q_norm"):  # qwen3 normalises queries and keys per head
                q, k = attention.q_norm(q), attention.k_norm(k)
            q, k = self.apply_rope(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            v = attention.v_proj(x).view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            self.keys[index, :batch, :, start:end] = k
            self.values[index, :batch, :, start:end] = v
            out = F.scaled_dot_product_attention(
                q, self.keys[index, :batch, :, :end], self.values[index, :batch, :, :end], attn_mask=mask,
                scale=self.scaling, enable_gqa=self.kv_heads != self.heads,
            )
            hidden = hidden + attention.o_proj(out.transpose(1, 2).reshape(batch, steps, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        self.length = end
        return self.model.lm_head(self.body.norm(hidden[:, -1]))

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop finished rows: later steps compute only for the rows still generating."""
        kept = rows.numel()
        self.keys[:, :kept] = self.keys[:, rows]
        self.values[:, :kept] = self.values[:, rows]


class HFCacheDecoder:
    """Any causal LM through its own forward and dynamic cache."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.length = 0
        # newer transformers name the argument `cache`; older ones only know `past_key_values`
        self.cache_argument = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        end = self.length + tokens.shape[1]
        output = self.model(input_ids=tokens, attention_mask=valid[:, :end].long(), position_ids=positions,
                            use_cache=True, logits_to_keep=1, **{self.cache_argument: self.cache})
        self.length = end
        return output.logits[:, -1]

    def keep_rows(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
