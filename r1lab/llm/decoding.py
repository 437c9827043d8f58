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
    """The fastest decoder that supports this model. A peft (LoRA) model goes through its own
    forward: the static path reads the layers' plain weights, which would leave the adapters out."""
    if StaticCacheDecoder.supports(model) and not hasattr(model, "peft_config"):
        return StaticCacheDecoder(model, batch_size, max_length)
    return HFCacheDecoder(model)


def cache_argument(model) -> str:
    """The name of the forward's cache argument: newer transformers say `cache`, older ones only
    know `past_key_values`. A peft model forwards it to the model it wraps, so that one is asked."""
    base = getattr(model, "get_base_model", lambda: model)()
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


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
        # one matmul for q, k and v and one for the MLP's gate and up projections: fewer, larger
        # matmuls per step (made afresh for each generate call, so they follow training updates)
        self.layers = [_FusedLayer(layer) for layer in self.body.layers]
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
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            x = F.rms_norm(hidden, hidden.shape[-1:], layer.input_norm, layer.input_eps)
            q, k, v = F.linear(x, layer.qkv_weight, layer.qkv_bias).split([q_size, kv_size, kv_size], dim=-1)
            q = q.view(batch, steps, self.heads, self.head_dim)
            k = k.view(batch, steps, self.kv_heads, self.head_dim)
            if layer.q_norm is not None:  # qwen3 normalises queries and keys per head
                q, k = layer.q_norm(q), layer.k_norm(k)
            q, k = self.apply_rope(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            v = v.view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            self.keys[index, :batch, :, start:end] = k
            self.values[index, :batch, :, start:end] = v
            keys, values = self.keys[index, :batch, :, :end], self.values[index, :batch, :, :end]
            if steps == 1:
                out = self._attend_one(q, keys, values, mask)
            else:
                out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scaling,
                                                     enable_gqa=self.kv_heads != self.heads)
            hidden = hidden + layer.o_proj(out.transpose(1, 2).reshape(batch, steps, -1))
            x = F.rms_norm(hidden, hidden.shape[-1:], layer.post_norm, layer.post_eps)
            gate, up = F.linear(x, layer.gate_up_weight, layer.gate_up_bias).chunk(2, dim=-1)
            hidden = hidden + layer.down_proj(layer.act(gate) * up)
        self.length = end
        return self.model.lm_head(self.body.norm(hidden[:, -1]))

    def _attend_one(self, q, keys, values, mask):
        """One query per row against the cache: two batched matmuls, cheaper on CPU than a
        flash-attention kernel built for long queries. Grouped KV heads are shared by folding
        the query heads of a group into the query-length axis."""
        batch, group = q.shape[0], self.heads // self.kv_heads
        q = q.reshape(batch, self.kv_heads, group, self.head_dim)
        scores = torch.matmul(q, keys.transpose(-1, -2)) * self.scaling  # (B, kv_heads, group, L)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.matmul(scores.softmax(-1), values)  # (B, kv_heads, group, head_dim)
        return out.reshape(batch, self.heads, 1, self.head_dim)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop finished rows: later steps compute only for the rows still generating.
        Only the filled part of the cache moves."""
        kept, filled = rows.numel(), self.length
        self.keys[:, :kept, :, :filled] = self.keys[:, rows, :, :filled]
        self.values[:, :kept, :, :filled] = self.values[:, rows, :, :filled]


class _FusedLayer:
    """A decoder layer's weights, with q/k/v and gate/up concatenated."""

    def __init__(self, layer):
        attention, mlp = layer.self_attn, layer.mlp
        projections = (attention.q_proj, attention.k_proj, attention.v_proj)
        self.qkv_weight = torch.cat([p.weight for p in projections])
        self.qkv_bias = torch.cat([p.bias for p in projections]) if attention.q_proj.bias is not None else None
        self.gate_up_weight = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
        self.gate_up_bias = (torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias])
                             if mlp.gate_proj.bias is not None else None)
        self.o_proj, self.down_proj, self.act = attention.o_proj, mlp.down_proj, mlp.act_fn
        self.input_norm, self.input_eps = layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon
        self.post_norm = layer.post_attention_layernorm.weight
        self.post_eps = layer.post_attention_layernorm.variance_epsilon
        self.q_norm, self.k_norm = getattr(attention, "q_norm", None), getattr(attention, "k_norm", None)


class HFCacheDecoder:
    """Any causal LM through its own forward and dynamic cache."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.length = 0
        self.cache_argument = cache_argument(model)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        end = self.length + tokens.shape[1]
        output = self.model(input_ids=tokens, attention_mask=valid[:, :end].long(), position_ids=positions,
                            use_cache=True, logits_to_keep=1, **{self.cache_argument: self.cache})
        self.length = end
        return output.logits[:, -1]

    def keep_rows(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
