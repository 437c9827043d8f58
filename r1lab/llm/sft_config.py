"""Every setting of supervised fine-tuning (`r1lab sft`), with its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.llm.lora import LoraSettings
from r1lab.runs.config import require
from r1lab.scale.settings import scale_settings


@dataclass
@scale_settings  # + where it runs: backend, num_workers, learner_workers, ... (docs/scale.md)
class SFTConfig:
    model: str = "tiny"
    data: str = ""  # JSONL rows {"prompt", "completion"}, or {"messages": [...]} conversations (see read_pairs)
    eval_data: str | None = None  # default: a held-out share of `data`
    eval_share: float = 0.05
    template: str = "plain"
    epochs: float = 1.0
    max_steps: int = 0  # 0: as many as `epochs` take
    batch_size: int = 16
    grad_accumulation: int = 1
    lr: float = 5e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 512
    eval_every: int = 50
    checkpoint_every: int = 100  # steps; one is always written when a signal stops the run
    checkpoint_minutes: float = 10.0  # and once this long has passed since the last one
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    lora: LoraSettings = field(default_factory=LoraSettings)
    gradient_checkpointing: bool = False
    save_model: bool = True

    def __post_init__(self):
        self.check_scale(sampling_workers=False)
        require(bool(self.data), "data", "is required: a JSONL file of {\"prompt\", \"completion\"} rows")
        require(self.batch_size >= 1 and self.grad_accumulation >= 1, "batch_size", "and grad_accumulation must be >= 1")
        require(self.lr > 0, "lr", "must be > 0")
        require(0 <= self.eval_share < 1, "eval_share", "must be in [0, 1)")
        require(self.epochs > 0 or self.max_steps > 0, "epochs", "or max_steps must be > 0")
