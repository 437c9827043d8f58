"""LoRA settings (the adapters themselves come from `peft`, the `lora` extra)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoraSettings:
    """LoRA adapters through `peft` (install the `lora` extra). rank 0 means no LoRA."""

    rank: int = 0
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: str = "all-linear"
