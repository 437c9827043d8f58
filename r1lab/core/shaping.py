"""Reward shaping terms that are formulas of their own."""

from __future__ import annotations

import torch


def overlong_penalty(lengths: torch.Tensor, max_length: int, buffer: int, penalty: float = 1.0) -> torch.Tensor:
    """DAPO's soft over-long punishment, added to the reward of each completion.

        R_len(y) = 0                                   if |y| <= L_max - L_buffer
                 = (L_max - L_buffer - |y|) / L_buffer  if L_max - L_buffer < |y| <= L_max
                 = -1                                  if |y| > L_max

    scaled by `penalty`. lengths (B,) in tokens; returns (B,) float. With generation capped at
    L_max, the last case is never reached; the ramp reaches -1 at the cap.
    """
    if buffer <= 0:
        return torch.zeros_like(lengths, dtype=torch.float32)
    lengths = lengths.float()
    start = max_length - buffer
    ramp = (start - lengths) / buffer
    shaped = torch.where(lengths <= start, torch.zeros_like(lengths), ramp)
    return penalty * torch.where(lengths > max_length, torch.full_like(lengths, -1.0), shaped)
