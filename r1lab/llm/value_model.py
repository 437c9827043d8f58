"""The critic of RLHF-PPO: V_t, the value of the state before each completion token.

Two forms, as the seed's §3.3 describes them:

- a separate model with a value head: a one-label sequence classifier whose `score` head is
  applied to its trunk's hidden state at every position, not only the last. Initialised from the
  reward model (the default of TRL's example, OpenRLHF and Stiennon et al.: its trunk already
  reads answers the way the reward does) or from the policy with a fresh head;
- a shared trunk with two heads: the policy's own hidden states, which its LM head turns into
  log-probs, go through an extra `ValueHead` too (one forward gives both).

V_t is read at the position that predicts completion token t (the last prompt token for t = 0),
so it sees the prompt and the tokens before t, as a state value must.
"""

from __future__ import annotations

import contextlib
import math

import torch

from r1lab.llm.reward_model import (
    MEAN_KEY,
    STD_KEY,
    base_transformer,
    check_reward_model,
    completion_states,
    float32_head,
    new_reward_model,
    score_head,
    sequence_classifier_lora,
)


class ValueHead(torch.nn.Module):
    """A linear map from a hidden state to a scalar value, in fp32; weights ~ N(0, 1/(H+1)) (N+'s init)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        reset_value_head(self.linear)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (...) fp32."""
        return float32_head(self.linear, hidden).squeeze(-1)


def reset_value_head(head: torch.nn.Linear) -> None:
    with torch.no_grad():
        head.weight.normal_(0.0, 1.0 / math.sqrt(head.in_features + 1))
        if head.bias is not None:
            head.bias.zero_()


def hidden_size(model) -> int:
    config = base_transformer(model).config
    return (config.get_text_config() if hasattr(config, "get_text_config") else config).hidden_size


def load_critic(source: str, *, from_reward_model: bool, normalized: bool = True, device=None, dtype=None,
                lora=None, gradient_checkpointing: bool = False):
    """A trainable critic: the reward model in `source` (its trunk and its score head), or the
    causal LM in `source` with a fresh value head. fp32 weights, forwards in the compute dtype.

    With `normalized` (the rewards are the RM's normalised scores), an RM's head is rescaled to
    (w . h - mean) / std, so that the critic starts on the scale of the rewards it will predict."""
    rm_config = check_reward_model(source) if from_reward_model else None
    model, _, _ = new_reward_model(source, device=device, dtype=dtype, gradient_checkpointing=gradient_checkpointing)
    if rm_config is None:
        reset_value_head(score_head(model))
    elif normalized:
        normalize_head(model, float(rm_config.get(MEAN_KEY) or 0.0), float(rm_config.get(STD_KEY) or 1.0))
    if lora is not None and lora.rank > 0:
        model = sequence_classifier_lora(model, lora)
    return model


def normalize_head(model, mean: float, std: float) -> None:
    """Replace the score head w by one with a bias that computes (w . h - mean) / std."""
    head = score_head(model)
    normalized = torch.nn.Linear(head.in_features, 1, bias=True, device=head.weight.device)
    with torch.no_grad():
        normalized.weight.copy_(head.weight / std)
        normalized.bias.fill_(-mean / std)
        if head.bias is not None:
            normalized.bias.add_(head.bias / std)
    inner = base_transformer(model)
    setattr(inner, "score" if getattr(inner, "score", None) is head else "classifier", normalized)


def critic_values(critic, prompt_ids, prompt_mask, completion_ids, completion_mask,
                  padding_free: bool = False) -> torch.Tensor:
    """V_t (B, T) fp32 of a separate critic for left-padded prompts and right-padded completions;
    0 on padding. Differentiable when called with gradients enabled; rows that repeat a prompt
    share its forward (or, `padding_free`, the rows' real tokens run packed)."""
    states = completion_states(critic, prompt_ids, prompt_mask, completion_ids, completion_mask,
                               padding_free)[:, :-1]
    return float32_head(score_head(critic), states).squeeze(-1) * completion_mask


class HeadRecorder:
    """Records what a causal LM's output embedding (LM head) receives and returns while active.

    The LM head sees exactly the hidden states that predict the tokens whose log-probs are
    computed, so a value head on the same tensors gives V_t from the same forward: the shared
    critic. The logits it returns give an entropy with a gradient, for the entropy bonus."""

    def __init__(self, model):
        self.head = base_transformer(model).get_output_embeddings()
        if self.head is None:
            raise ValueError(f"{type(base_transformer(model)).__name__} has no output embedding to share a trunk with")
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    @contextlib.contextmanager
    def recording(self):
        self.inputs.clear()
        self.outputs.clear()

        def hook(_module, args, output):
            self.inputs.append(args[0])
            self.outputs.append(output)

        handle = self.head.register_forward_hook(hook)
        try:
            yield self
        finally:
            handle.remove()
