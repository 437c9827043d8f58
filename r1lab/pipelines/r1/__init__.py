"""DeepSeek-R1's four stages (cold start, reasoning RL, rejection sampling and SFT, RL for all
scenarios), the R1-Zero baseline and distillation, wired from r1lab's trainers: `r1lab r1`."""

from r1lab.pipelines.r1.config import R1Config
from r1lab.pipelines.r1.pipeline import parse_stages, run_r1

__all__ = ["R1Config", "parse_stages", "run_r1"]
