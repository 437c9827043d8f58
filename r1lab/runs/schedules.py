"""The learning-rate schedule every language-model job uses: linear warm-up, then a decay."""

from __future__ import annotations

import math


def warmup_then_decay(step: int, total_steps: int, warmup_steps: int = 0, shape: str = "cosine",
                      min_ratio: float = 0.0) -> float:
    """The factor that multiplies the peak learning rate at optimiser step `step` (0-based).

        warm-up (step < W):  (step + 1) / W
        then, with p = min(1, (step - W) / max(1, total - W)):
            cosine:    m + (1 - m) * (1 + cos(pi * p)) / 2
            linear:    m + (1 - m) * (1 - p)
            constant:  1
    where W = warmup_steps and m = min_ratio, the floor the decay ends at.
    """
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if shape == "cosine":
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if shape == "linear":
        return min_ratio + (1 - min_ratio) * (1 - progress)
    if shape == "constant":
        return 1.0
    raise ValueError(f"unknown schedule shape {shape!r}: cosine, linear or constant")
