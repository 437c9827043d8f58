"""Load a policy (and on request a frozen reference copy) from `tiny`, a local directory or a hub id.

Nothing here knows the tiny model: `tiny` is only a path to `r1lab/assets/tiny`, and everything
else goes through `AutoTokenizer` / `AutoModelForCausalLM`. Device and compute dtype follow what
is there: CUDA with bf16 when available, else CPU float32. Whatever the compute dtype, the policy
keeps fp32 weights (see `r1lab.llm.precision`); only the frozen reference is stored in it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from r1lab.llm.lora import LoraSettings
from r1lab.llm.precision import parse_dtype, set_compute_dtype

TINY = "tiny"
BUNDLED = {"tiny": "tiny", "tiny-student": "tiny-student"}  # name -> folder under r1lab/assets


@dataclass
class LoadedModel:
    policy: Any
    tokenizer: Any
    reference: Any | None
    device: torch.device
    dtype: torch.dtype  # the compute dtype of forwards; the policy's weights are fp32 whatever it is
    source: str


def tiny_model_path(name: str = TINY) -> Path:
    """The folder of a bundled model: `tiny` (the base model) or `tiny-student` (a smaller one, for distillation)."""
    return Path(str(resources.files("r1lab") / "assets" / BUNDLED[name]))


def resolve_model_path(name: str | Path) -> str:
    """`tiny`, a local directory, or a hub id. Something written as a path (`./x`, `/x`, `~/x`,
    `a/b/c`) that does not exist is a missing directory, not a hub id to look up."""
    if str(name) in BUNDLED:
        path = tiny_model_path(str(name))
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"the bundled model '{name}' is missing from {path}; run `r1lab pretrain-tiny`")
        return str(path)
    text = str(name)
    if not Path(text).expanduser().exists() and looks_like_path(text):
        raise FileNotFoundError(f"{text}: no such model directory")
    return str(Path(text).expanduser()) if text.startswith("~") else text


def looks_like_path(text: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else with a separator is a file system path."""
    return text.startswith(("/", "./", "../", "~", ".\\")) or text.count("/") > 1 or "\\" in text or text.endswith("/")


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device: torch.device, dtype: str | None = None) -> torch.dtype:
    """The compute dtype: the one asked for, else bf16 on a GPU that has it, else float32."""
    if dtype:
        chosen = parse_dtype(dtype)
        if chosen == torch.float16:
            raise ValueError("dtype 'float16' needs loss scaling, which r1lab does not do; use 'bfloat16' or 'float32'")
        return chosen
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def quiet_transformers() -> None:
    """transformers' own progress bars ("Loading weights", "Writing model shards") off: r1lab's
    progress bar and summaries are the output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_tokenizer(name: str | Path):
    from transformers import AutoTokenizer

    quiet_transformers()
    path = resolve_model_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(f"could not load a tokenizer from '{name}': {error}") from None
    if tokenizer.pad_token is None:  # many causal LMs ship without one; EOS is the usual stand-in
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation appends on the right, so prompts pad on the left
    return tokenizer


def load_model(
    name: str | Path,
    *,
    reference: bool = False,
    device: str | None = None,
    dtype: str | None = None,
    lora: LoraSettings | None = None,
    gradient_checkpointing: bool = False,
) -> LoadedModel:
    """Policy, tokenizer and (when `reference`) a frozen copy of the initial policy.

    The policy keeps fp32 weights (and so fp32 optimiser state) and runs its forwards in the
    compute dtype `dtype` under autocast; the reference, which never trains, is stored in it.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name)
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(torch_device, dtype)
    tokenizer = load_tokenizer(name)
    try:
        policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"could not load model '{name}': not the bundled 'tiny', not a local model directory, "
            f"and not reachable on the hub ({error})"
        ) from None
    policy.to(torch_device)
    set_compute_dtype(policy, torch_dtype)
    if policy.generation_config is not None and policy.generation_config.pad_token_id is None:
        policy.generation_config.pad_token_id = tokenizer.pad_token_id
    frozen = freeze(copy.deepcopy(policy).to(torch_dtype)) if reference else None
    if lora is not None and lora.rank > 0:
        policy = apply_lora(policy, lora)
    if gradient_checkpointing:
        # transformers renamed it; older releases only know the first name
        getattr(policy, "activation_checkpointing_enable", policy.gradient_checkpointing_enable)()
        policy.config.use_cache = False
    return LoadedModel(policy, tokenizer, frozen, torch_device, torch_dtype, str(name))


def freeze(model):
    """A model that never trains: eval mode, no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model


def apply_lora(model, settings: LoraSettings):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        from r1lab.runs import ConfigError

        raise ConfigError("LoRA (lora.rank > 0) needs peft: pip install 'r1lab[lora]'") from None
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)
