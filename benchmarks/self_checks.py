"""How a base model's self-checks go: `self_check_statistics` of the model card on any model directory.

    python benchmarks/self_checks.py                       # the bundled tiny model
    python benchmarks/self_checks.py --model RUN_DIR/model --items 150

Prints one JSON object: how often held-out 4-6 digit sums are checked (T = 1), the accuracy of
checked against unchecked solutions, missed slips, caught slips and false alarms, and per check
step whether the wanted digit is the operand's and whether the verdict matches the digits.
"""

from __future__ import annotations

import argparse
import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1lab.llm.loading import tiny_model_path
from r1lab.pipelines.tiny_model_card import self_check_statistics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(tiny_model_path()), help="a model directory (default: the bundled tiny model)")
    parser.add_argument("--items", type=int, default=150, help="held-out sums, 4 samples each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    print(json.dumps({"model": args.model, **self_check_statistics(model, tokenizer, args.items, args.seed)}, indent=2))


if __name__ == "__main__":
    main()
