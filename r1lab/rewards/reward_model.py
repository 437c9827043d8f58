"""A trained reward model as a reward function: scores (prompt, completion) pairs, batched.

    reward = (r(prompt + completion) - mean) / std        the RM's score, normalised with its saved statistics

`summary_only=True` scores only the part of an R1-format completion after its reasoning
(`<think> ... </think> summary`), as DeepSeek-R1's last RL stage does for helpfulness: the
reasoning is judged by the rule rewards, the summary the user reads by the reward model. A
completion whose reasoning never closes has no summary; it gets `no_summary` (default None:
"not applicable", so the RM's statistics leave it out and the format reward does the judging).

The function has TRL's signature, `f(prompts, completions, **fields) -> list[float | None]`, and
holds the model, so it runs in a thread of the training process, not in a worker process:

    from r1lab.rewards.reward_model import reward_model_function
    functions = reward_functions(["r1_format"]) + [reward_model_function("runs/rm/model", summary_only=True)]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from r1lab.rewards.parsing import summary_text
from r1lab.rewards.runner import RewardFunction


def reward_model_reward(path: str | Path, *, summary_only: bool = False, normalize: bool = True, batch_size: int = 64,
                        no_summary: float | None = None, device: str | None = None,
                        dtype: str | None = None) -> Callable[..., list[float | None]]:
    """A reward function scoring with the reward model saved in `path` (by `r1lab reward-model`).

    The prompt is the text the policy saw (its template included) and the completion follows it
    as generated, with EOS after it: the shape the reward model was trained on."""
    from r1lab.llm.reward_model import load_reward_model

    model = load_reward_model(path, device=device, dtype=dtype)

    def reward(prompts: list[str], completions: list[str], **_fields) -> list[float | None]:
        texts = [_judged_part(text, summary_only) for text in completions]
        scored = [i for i, text in enumerate(texts) if text is not None]
        values: list[float | None] = [no_summary] * len(completions)
        if scored:
            raw = model.score_texts([prompts[i] for i in scored], [texts[i] for i in scored], batch_size)
            scores = model.normalize(raw) if normalize else raw
            for i, value in zip(scored, scores.tolist()):
                values[i] = value
        return values

    reward.reward_model = model  # the loaded model, for callers that want its statistics
    return reward


def _judged_part(completion: str, summary_only: bool) -> str | None:
    if not summary_only:
        return completion
    summary = summary_text(completion)
    return None if summary is None else " " + summary if summary else ""


def reward_model_function(path: str | Path, *, name: str = "reward_model", weight: float = 1.0,
                          **options) -> RewardFunction:
    """`reward_model_reward` ready for `r1lab.rewards.scorer`: in a thread, without a time limit
    (a forward of a large reward model may take longer than the rules' limit)."""
    return RewardFunction(name, reward_model_reward(path, **options), weight, None, "thread")
