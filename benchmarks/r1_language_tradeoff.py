"""Stage 2 of R1 alone, with and without the language-consistency reward: mixing against accuracy.

DeepSeek-R1 adds the language-consistency reward to accuracy in its reasoning RL and reports that
it costs a little accuracy to remove language mixing. This runs stage 2 (`reasoning-rl`) twice from
the same cold-start model, identical but for `language_weight` (0 and 1), and evaluates both models
as `r1lab r1`'s table does (held-out arithmetic asked in English and in Chinese, greedy):

    python benchmarks/r1_language_tradeoff.py --cold-start runs/r1/stages/cold-start
    python benchmarks/r1_language_tradeoff.py --cold-start runs/r1/stages/cold-start --steps 40 --from-base

`--from-base` starts both runs from the base model instead (R1-Zero-style RL under R1's format, where
the base model's mixing is still there to be removed or kept). Prints JSON: per run the stage's
reward curve ends and the table's figures (`accuracy_en`, `accuracy_zh`, `mixing_rate_zh`, ...).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-start", type=Path, required=True, help="a finished cold-start stage directory")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-items", type=int, default=100)
    parser.add_argument("--from-base", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from r1lab.llm.loading import tiny_model_path
    from r1lab.pipelines.r1 import R1Config, stages
    from r1lab.pipelines.r1.table import row

    config = R1Config(seed=args.seed, eval_items=args.eval_items)
    config = replace(config, reasoning_rl=replace(config.reasoning_rl, steps=args.steps))
    start = Path(args.cold_start)
    if args.from_base:  # a directory whose model/ is the base model's
        start = Path(tempfile.mkdtemp()) / "base"
        start.mkdir()
        (start / "model").symlink_to(tiny_model_path())
    results = {"settings": vars(args) | {"cold_start": str(args.cold_start)}}
    with tempfile.TemporaryDirectory() as tmp:
        for weight in (0.0, 1.0):
            directory = Path(tmp) / f"language-{weight}"
            summary = stages.reasoning_rl(config, directory, start, resume=False, quiet=True, language_weight=weight)
            figures = row(f"reasoning-rl, language_weight={weight}", str(directory / "model"), "r1", config)
            figures.pop("model")
            results[f"language_weight={weight}"] = {"reward_first": summary.get("reward_first"),
                                                     "reward_last": summary.get("reward_last"),
                                                     "wall_seconds": summary.get("wall_seconds"), **figures}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
