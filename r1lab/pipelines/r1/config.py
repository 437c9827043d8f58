"""Every setting of `r1lab r1`: one section per stage, each reachable as `--set STAGE.key=value`.

The defaults run the whole road on the bundled tiny model in about twenty minutes on two CPU
cores; the same command takes `--model` and data sets for a real model on a GPU, where every
step count and batch size below should grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1lab.runs.config import require
from r1lab.scale.settings import scale_settings

STAGES = ("r1-zero", "reward-models", "cold-start", "reasoning-rl", "rejection-sampling", "all-scenarios", "distill")
NUMBERED = {1: "cold-start", 2: "reasoning-rl", 3: "rejection-sampling", 4: "all-scenarios", 5: "distill"}


@dataclass
class Tasks:
    """The reasoning prompts of the RL stages, by share: arithmetic in both languages, countdown, code."""

    arithmetic: float = 0.7
    countdown: float = 0.1
    code: float = 0.2
    max_digits: int = 5
    zh_share: float = 0.5


@dataclass
class RLStage:
    """A GRPO stage (the R1-Zero baseline, reasoning RL, RL for all scenarios, the student's RL)."""

    steps: int = 40
    prompts_per_step: int = 8
    group_size: int = 8
    max_new_tokens: int = 160
    lr: float = 1e-4
    beta: float = 0.0
    micro_batch_size: int = 64
    language_weight: float = 1.0  # the language-consistency reward, added to accuracy as R1 does


@dataclass
class ColdStart:
    """Stage 1: SFT of the base model on readable chains of thought in R1's format."""

    examples: int = 3000
    general_share: float = 0.25  # requests answered with a short chain of thought, so the format covers them
    harmful_share: float = 0.3  # of those, harmful requests answered with a refusal (else the format has none)
    check_share: float = 0.15  # worked solutions that verify their result
    steps: int = 150
    batch_size: int = 32
    lr: float = 6e-4  # 1e-3 cost the base model's replies to requests; 3e-4 x 100 steps left code unlearnt


@dataclass
class Rejection:
    """Stage 3: rejection sampling from the stage-2 model, then SFT of the base model on the union."""

    prompts: int = 1200
    samples_per_prompt: int = 4
    general_prompts: int = 400
    general_samples_per_prompt: int = 8  # answers per request, the reward model's best one kept
    curated_general: int = 600  # + requests with the world's reference reply (DeepSeek reused V3's SFT data)
    temperature: float = 0.7  # below 1, as DeepSeek sampled R1 (0.6): fewer broken samples to throw away
    harmful_share: float = 0.3  # of the general prompts: harmful requests, kept when the harmless RM prefers the reply
    max_paragraph_chars: int = 600  # a longer reasoning paragraph is unreadable: filtered out
    steps: int = 150
    batch_size: int = 32
    lr: float = 6e-4


@dataclass
class Distill:
    """Stage 5: a smaller student SFT'd on the final model's data, against RL on the student with
    the same budget of sampled completions."""

    student: str = "tiny-student"
    prompts: int = 500
    samples_per_prompt: int = 2
    sft_steps: int = 150
    rl: RLStage = field(default_factory=lambda: RLStage(steps=30))


@dataclass
class RewardModels:
    """The helpful and harmless reward models of stage 4 (and of the table's `rm_score`)."""

    steps: int = 250
    train_pairs: int = 4000
    mismatched_pairs: float = 1.0  # + as many (prompt, another request's good answer) pairs: see reward_model
    lr: float = 1e-3


@dataclass
@scale_settings  # + where the stages run: backend, num_workers, learner_workers (docs/scale.md)
class R1Config:
    model: str = "tiny"
    seed: int = 0
    tasks: Tasks = field(default_factory=Tasks)
    r1_zero: RLStage = field(default_factory=lambda: RLStage(steps=40, language_weight=0.0))
    reward_models: RewardModels = field(default_factory=RewardModels)
    cold_start: ColdStart = field(default_factory=ColdStart)
    reasoning_rl: RLStage = field(default_factory=RLStage)
    rejection: Rejection = field(default_factory=Rejection)
    # a smaller step than stage 2's: at 1e-4 it cost 4-6 points of accuracy and code on held-out items
    all_scenarios: RLStage = field(default_factory=lambda: RLStage(steps=40, lr=5e-5))
    general_share: float = 0.3  # stage 4: general requests (benign and harmful) among the prompts
    distill: Distill = field(default_factory=Distill)
    eval_items: int = 100  # held-out questions per language, and requests per kind, for the final table
    eval_max_new_tokens: int = 200
    dtype: str | None = None
    device: str | None = None

    def __post_init__(self):
        shares = (self.tasks.arithmetic, self.tasks.countdown, self.tasks.code)
        require(all(s >= 0 for s in shares) and sum(shares) > 0, "tasks", "shares must be >= 0 and not all 0")
        require(0 <= self.general_share < 1, "general_share", "must be in [0, 1)")
        require(self.eval_items >= 1, "eval_items", "must be >= 1")
        self.check_scale()  # RL stages: generation workers; SFT stages and the GRPO update: the learner
