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
import weakref

import torch
import torch.nn.functional as F

from r1lab.llm.precision import autocast, compute_dtype

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
    """Llama-family forward on preallocated KV caches: one for the distinct prompts, one per row for
    what each row generates.

    The first call prefills the distinct prompts; `keep_rows(copy_of)` then makes the rows (a GRPO
    group is G rows of one prompt), and each later call decodes one token per row. A row's query
    attends to its prompt's keys, stored once however many rows share that prompt, and to its own
    generated keys: the prompt part is computed for all the rows of a prompt in one matmul, so the
    keys of a prompt are read from memory once per step, not once per row (at one query per row,
    attention costs what reading the cache costs).

    Precision mirrors the training forward under autocast: the matmuls of the projections run in
    the model's compute dtype (on a copy of the weights in that dtype, made once per weights
    version), while the residual stream, the norms, the cached keys and values, the attention
    scores and their softmax stay in fp32, so that sampled log-probs stay close to the training
    forward's (bf16 attention scores alone moved log-probs by up to 0.06 on the tiny model).
    """

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
        self.weights = fused_weights(model)
        self.layers = self.weights.layers
        self.batch_size, self.max_length = batch_size, max_length
        self.length = 0  # positions filled so far: the prompt, then the generated tokens

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits of the last position. tokens, positions (B, S); valid (B, length + S) marks real tokens.

        The first call is the prefill of the distinct prompts (S = prompt length); every later call
        decodes one token for each row (S = 1)."""
        batch, steps = tokens.shape
        prefill = self.length == 0
        if not prefill and steps != 1:
            raise ValueError("StaticCacheDecoder decodes one token per row after the prefill")
        if prefill:
            self._allocate(tokens, valid[:, :steps])
        hidden = self.body.embed_tokens(tokens).float()
        cos, sin = self.body.rotary_emb(hidden, positions)
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        column = self.length - self.prompt_length  # where a decoded token's key goes
        linear = self.weights.linear
        for index, layer in enumerate(self.layers):
            x = F.rms_norm(hidden, hidden.shape[-1:], layer.input_norm, layer.input_eps)
            q, k, v = linear(x, layer.qkv_weight, layer.qkv_bias).split([q_size, kv_size, kv_size], dim=-1)
            q = q.view(batch, steps, self.heads, self.head_dim)
            k = k.view(batch, steps, self.kv_heads, self.head_dim)
            if layer.q_norm is not None:  # qwen3 normalises queries and keys per head
                q, k = layer.q_norm(q), layer.k_norm(k)
            q, k = self.apply_rope(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            v = v.view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            if prefill:  # causal within the prompt, never attending to padding
                self.prompt_keys[index], self.prompt_values[index] = k, v
                causal = torch.ones(steps, steps, dtype=torch.bool, device=tokens.device).tril()
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal[None, None] & self.prompt_valid[:, None, None],
                                                     scale=self.scaling, enable_gqa=self.kv_heads != self.heads)
            else:
                self.keys[index, :batch, :, column] = k[:, :, 0]
                self.values[index, :batch, :, column] = v[:, :, 0]
                out = self._attend_one(index, q, column + 1)
            hidden = hidden + linear(out.transpose(1, 2).reshape(batch, steps, -1), layer.o_weight, layer.o_bias)
            x = F.rms_norm(hidden, hidden.shape[-1:], layer.post_norm, layer.post_eps)
            gate, up = linear(x, layer.gate_up_weight, layer.gate_up_bias).chunk(2, dim=-1)
            hidden = hidden + linear(layer.act(gate) * up, layer.down_weight, layer.down_bias)
        self.length += steps
        last = F.rms_norm(hidden[:, -1], hidden.shape[-1:], self.weights.final_norm, self.weights.final_eps)
        return F.linear(last, self.weights.lm_head, self.weights.lm_head_bias)

    def _allocate(self, prompt_ids: torch.Tensor, prompt_valid: torch.Tensor) -> None:
        device = prompt_ids.device
        layers, (prompts, self.prompt_length) = len(self.layers), prompt_ids.shape
        prompt_shape = (layers, prompts, self.kv_heads, self.prompt_length, self.head_dim)
        self.prompt_keys = torch.zeros(prompt_shape, dtype=torch.float32, device=device)
        self.prompt_values = torch.zeros_like(self.prompt_keys)
        self.prompt_valid = prompt_valid.bool()  # (prompts, P): left padding is False
        shape = (layers, self.batch_size, self.kv_heads, self.max_length - self.prompt_length, self.head_dim)
        self.keys = torch.zeros(shape, dtype=torch.float32, device=device)
        self.values = torch.zeros_like(self.keys)
        self._set_rows(torch.arange(prompts, device=prompt_ids.device))

    def _set_rows(self, prompt_of_row: torch.Tensor) -> None:
        """Which prompt each row continues, and each row's slot among the rows of its prompt."""
        self.prompt_of_row = prompt_of_row
        counts = torch.bincount(prompt_of_row, minlength=self.prompt_keys.shape[1])
        order = torch.argsort(prompt_of_row, stable=True)
        first = torch.cumsum(counts, 0) - counts
        self.slot = torch.empty_like(prompt_of_row)
        self.slot[order] = torch.arange(prompt_of_row.numel(), device=order.device) - first[prompt_of_row[order]]
        self.slots = int(counts.max())
        self.row_prompt_valid = self.prompt_valid[prompt_of_row][:, None, None, :]  # (B, 1, 1, P)

    def _by_prompt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, kv, g, n) per row -> (prompts, kv, slots * g, n): the rows of a prompt side by side."""
        rows, kv, group, n = x.shape
        grouped = x.new_zeros(self.prompt_keys.shape[1], self.slots, kv, group, n)
        grouped[self.prompt_of_row, self.slot] = x
        return grouped.transpose(1, 2).reshape(grouped.shape[0], kv, self.slots * group, n)

    def _by_row(self, x: torch.Tensor, group: int) -> torch.Tensor:
        """The inverse of `_by_prompt`."""
        prompts, kv, _, n = x.shape
        return x.view(prompts, kv, self.slots, group, n).transpose(1, 2)[self.prompt_of_row, self.slot]

    def _attend_one(self, index: int, q: torch.Tensor, generated: int) -> torch.Tensor:
        """One query per row against its prompt's keys and its own `generated` keys. Grouped KV
        heads are shared by folding the query heads of a group into the query axis."""
        batch, group = q.shape[0], self.heads // self.kv_heads
        q = q.reshape(batch, self.kv_heads, group, self.head_dim)
        keys, values = self.keys[index, :batch, :, :generated], self.values[index, :batch, :, :generated]
        prompt_scores = self._by_row(torch.matmul(self._by_prompt(q), self.prompt_keys[index].transpose(-1, -2)), group)
        prompt_scores = prompt_scores.masked_fill(~self.row_prompt_valid, float("-inf"))
        own_scores = torch.matmul(q, keys.transpose(-1, -2))
        probs = (torch.cat([prompt_scores, own_scores], dim=-1) * self.scaling).softmax(-1)
        prompt_probs, own_probs = probs.split([self.prompt_length, generated], dim=-1)
        out = self._by_row(torch.matmul(self._by_prompt(prompt_probs), self.prompt_values[index]), group)
        out = out + torch.matmul(own_probs, values)  # (B, kv_heads, group, head_dim)
        return out.reshape(batch, self.heads, 1, self.head_dim)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Make the batch these rows: after the prefill, `rows` maps each row to its prompt; later,
        it lists the rows still generating. Only the filled part of the cache moves."""
        filled = self.length - self.prompt_length
        if filled == 0:  # right after the prefill: rows are copies of prompts
            self._set_rows(self.prompt_of_row[rows])
            return
        kept = rows.numel()
        self.keys[:, :kept, :, :filled] = self.keys[:, rows, :, :filled]
        self.values[:, :kept, :, :filled] = self.values[:, rows, :, :filled]
        self._set_rows(self.prompt_of_row[rows])


class FusedWeights:
    """The decoder's copy of a Llama-family model's weights: q/k/v and gate/up concatenated (fewer,
    larger matmuls per step), every matrix in the model's compute dtype but the head, which stays
    fp32 with the norm weights."""

    def __init__(self, model):
        self.dtype = compute_dtype(model)
        cast = lambda t: None if t is None else t.detach().to(self.dtype)  # noqa: E731
        self.layers = [_FusedLayer(layer, cast) for layer in model.model.layers]
        # the head stays fp32 (see r1lab.llm.precision)
        head_bias = getattr(model.lm_head, "bias", None)
        self.lm_head = model.lm_head.weight.detach().float()
        self.lm_head_bias = None if head_bias is None else head_bias.detach().float()
        self.final_norm, self.final_eps = model.model.norm.weight.detach(), model.model.norm.variance_epsilon

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """x @ weight.T + bias in the compute dtype, returned in fp32 (the residual stream's dtype)."""
        return F.linear(x.to(self.dtype), weight, bias).float()


_FUSED_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fused_weights(model) -> FusedWeights:
    """The model's `FusedWeights`, rebuilt only when a weight changed since the last call.

    Building them copies about two thirds of the parameters, which at 1B parameters costs more
    than a short generation; so the copy is kept per model and per weights version. A weight's
    version is its storage and its in-place version counter, which an optimiser step or a
    `load_state_dict` bumps."""
    version = (compute_dtype(model), tuple((p.data_ptr(), p._version) for p in model.parameters()))
    cached = _FUSED_CACHE.get(model)
    if cached is None or cached[0] != version:
        cached = (version, FusedWeights(model))
        _FUSED_CACHE[model] = cached
    return cached[1]


class _FusedLayer:
    """A decoder layer's weights, with q/k/v and gate/up concatenated, cast by `cast`."""

    def __init__(self, layer, cast):
        attention, mlp = layer.self_attn, layer.mlp
        projections = (attention.q_proj, attention.k_proj, attention.v_proj)
        self.qkv_weight = cast(torch.cat([p.weight for p in projections]))
        self.qkv_bias = cast(torch.cat([p.bias for p in projections])) if attention.q_proj.bias is not None else None
        self.gate_up_weight = cast(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]))
        self.gate_up_bias = (cast(torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias]))
                             if mlp.gate_proj.bias is not None else None)
        self.o_weight, self.o_bias = cast(attention.o_proj.weight), cast(attention.o_proj.bias)
        self.down_weight, self.down_bias = cast(mlp.down_proj.weight), cast(mlp.down_proj.bias)
        self.act = mlp.act_fn
        self.input_norm, self.input_eps = layer.input_layernorm.weight.detach(), layer.input_layernorm.variance_epsilon
        self.post_norm = layer.post_attention_layernorm.weight.detach()
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
        with autocast(self.model):
            output = self.model(input_ids=tokens, attention_mask=valid[:, :end].long(), position_ids=positions,
                                use_cache=True, logits_to_keep=1, **{self.cache_argument: self.cache})
        self.length = end
        return output.logits[:, -1].float()

    def keep_rows(self, rows: torch.Tensor) -> None:
        self.cache.batch_select_indices(rows)
