"""Language-model policies: loading, sampling, log-probs, SFT and GRPO, for the tiny model or any causal LM."""
