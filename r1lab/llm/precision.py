"""Mixed precision: trained weights and optimiser state in fp32, forwards in a compute dtype.

The usual recipe (and the only one under which small updates survive): the trained model keeps
fp32 master weights, and its forwards run under autocast in bf16, which halves memory traffic
and runs on tensor cores. A bf16 weight cannot hold an update smaller than about 1/256 of its
value, so AdamW at lr 1e-6 on bf16 weights rounds most updates away; an fp32 weight keeps them.

Frozen models (the reference, a reward model, the sampler's fused copy) never take updates and
may be stored in the compute dtype. A model carries the dtype it should run in, set by
`load_model`, so that every forward (training, sampling, evaluation) runs it the same way.

The language-model head is the exception: it runs in fp32 whatever the compute dtype. Logits of
size ~10-20 rounded to bf16 are off by up to ~0.06, which moves every log-prob, and so every
importance ratio and KL estimate, by as much; the head is one matmul, so fp32 costs little.
"""

from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
_ATTRIBUTE = "r1lab_compute_dtype"


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype '{name}' is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def set_compute_dtype(model, dtype: torch.dtype) -> None:
    """Run `model`'s forwards in `dtype` (under autocast) from now on, with its head in fp32."""
    setattr(model, _ATTRIBUTE, dtype)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if dtype != torch.float32 and isinstance(head, torch.nn.Linear):
        head.forward = types.MethodType(_float32_linear, head)


def _float32_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        bias = None if self.bias is None else self.bias.float()
        return F.linear(x.float(), self.weight.float(), bias)


def compute_dtype(model) -> torch.dtype:
    """The dtype `model`'s forwards run in: the one `load_model` chose, else its weights' dtype."""
    dtype = getattr(model, _ATTRIBUTE, None)
    return dtype if dtype is not None else next(model.parameters()).dtype


def autocast(model):
    """The autocast context for `model`'s forwards: bf16 (or fp16) matmuls over fp32 weights, or
    nothing when the model computes in its own dtype."""
    dtype = compute_dtype(model)
    parameter = next(model.parameters())
    if dtype == parameter.dtype or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(parameter.device.type, dtype=dtype)
