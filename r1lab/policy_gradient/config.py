"""The settings of `r1lab train {reinforce,trpo,ppo}`: typed dataclasses that reject unknown keys.

`CommonConfig` holds what every policy-gradient job shares (the environment, the rollout, the
network, the run); each algorithm's config adds its own. Values come from the defaults, a YAML
preset (`r1lab/configs/ALGO-ENV.yaml`), named options and `--set key=value`, in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from r1lab.runs import require
from r1lab.scale.settings import scale_settings


@dataclass
@scale_settings  # + where it runs: backend, num_workers, learner_workers, ... (docs/scale.md)
class CommonConfig:
    """What REINFORCE, TRPO and PPO share (and, from ScaleSettings, where they run: backend,
    num_workers, ray_address, ...; see docs/scale.md).

    env_id          any registered Gymnasium id (`r1lab/Maze-v0` included), or `module:EnvId`, which
                    imports `module` first (Gymnasium's own form)
    gym_packages    modules to import before the env is made, so that they register their envs
    env_kwargs      keyword arguments for gym.make, e.g. {size: 6} for a random maze
    num_envs        N parallel environments in one gymnasium.vector env
    vectorization   "sync" (all in this process) or "async" (one subprocess each)
    steps_per_env   T: steps of each environment per iteration; a batch holds N * T transitions
    total_steps     environment steps to train for (rounded up to whole iterations)
    gamma           discount
    hidden_sizes    widths of the MLP's hidden layers
    shared_network  one trunk with a policy head and a value head, instead of two MLPs
    log_std_init    a Gaussian policy's starting log-std (state-independent, learned)
    normalize_obs   running mean/std normalisation of observations (saved in checkpoints)
    normalize_reward  scale rewards by a running std of the discounted return
    eval_episodes   episodes of the deterministic policy evaluated at the end (summary.json)
    checkpoint_every  iterations between checkpoints (one is always written at the end, and when
                      SIGINT or SIGTERM stops the run)
    checkpoint_minutes  and one once this long has passed since the last
    torch_threads   intra-op threads; 1 is fastest for these small networks
    """

    env_id: str = "CartPole-v1"
    gym_packages: list[str] = field(default_factory=list)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    num_envs: int = 8
    vectorization: Literal["sync", "async"] = "sync"
    steps_per_env: int = 128
    total_steps: int = 100_000
    gamma: float = 0.99
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: Literal["tanh", "relu"] = "tanh"
    shared_network: bool = False
    log_std_init: float = 0.0
    normalize_obs: bool = False
    normalize_reward: bool = False
    seed: int = 0
    eval_episodes: int = 10
    checkpoint_every: int = 10
    checkpoint_minutes: float = 10.0
    torch_threads: int = 1
    tensorboard: bool = True

    def __post_init__(self) -> None:
        from r1lab.policy_gradient.rollout import check_env_id, import_env_packages

        import_env_packages(self.gym_packages)
        check_env_id(self.env_id)
        require(self.num_envs >= 1, "num_envs", f"must be >= 1, got {self.num_envs}")
        require(self.steps_per_env >= 1, "steps_per_env", f"must be >= 1, got {self.steps_per_env}")
        require(self.total_steps >= 1, "total_steps", f"must be >= 1, got {self.total_steps}")
        require(0.0 <= self.gamma <= 1.0, "gamma", f"must be in [0, 1], got {self.gamma}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1, "hidden_sizes",
                f"must be a non-empty list of positive widths, got {self.hidden_sizes}")
        require(self.eval_episodes >= 0, "eval_episodes", f"must be >= 0, got {self.eval_episodes}")
        require(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        require(self.torch_threads >= 1, "torch_threads", f"must be >= 1, got {self.torch_threads}")
        self.check_scale(learner=False)
        require(self.num_envs % self.num_workers == 0, "num_envs", f"= {self.num_envs} must be a multiple of "
                f"num_workers = {self.num_workers}: each worker steps an equal share of the envs")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.steps_per_env

    @property
    def iterations(self) -> int:
        return math.ceil(self.total_steps / self.batch_size)


@dataclass
class ReinforceConfig(CommonConfig):
    """REINFORCE (seed §3.1): one gradient step of -log pi(a|s) * Psi per batch.

    psi         "total_return": the seed's R(tau), the whole episode's return for every step;
                "reward_to_go": G_t, only the rewards after the action (lower variance)
    baseline    subtract a learned V(s) (the critic, fitted by regression on the same target)
    lr          the policy's learning rate (Adam)
    critic_lr, critic_epochs, critic_minibatch_size   the baseline's regression
    normalize_advantages   whiten Psi (minus the baseline) over the batch
    max_grad_norm   clip the policy gradient's norm; None: no clipping
    """

    steps_per_env: int = 500
    total_steps: int = 200_000
    psi: Literal["total_return", "reward_to_go"] = "reward_to_go"
    baseline: bool = True
    lr: float = 3e-3
    critic_lr: float = 1e-3
    critic_epochs: int = 5
    critic_minibatch_size: int = 256
    normalize_advantages: bool = True
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(not self.shared_network, "shared_network", "must be false for REINFORCE: the baseline is "
                "fitted by its own regression, so actor and critic are separate networks")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.critic_lr > 0, "critic_lr", f"must be > 0, got {self.critic_lr}")
        require(self.critic_epochs >= 1, "critic_epochs", f"must be >= 1, got {self.critic_epochs}")
        require(self.critic_minibatch_size >= 1, "critic_minibatch_size", "must be >= 1")
        require(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "must be > 0 or null")


@dataclass
class TRPOConfig(CommonConfig):
    """TRPO (seed §3.2): maximise E[ratio * A] subject to E[KL(pi_old || pi)] <= max_kl.

    max_kl          delta, the trust region's radius in mean KL
    cg_iterations   conjugate-gradient iterations for F^-1 g
    cg_damping      F + damping * I keeps the solve well-conditioned
    line_search_steps, line_search_shrink   backtracking: try shrink^k of the full step
    accept_ratio    accept a step only if it gains this fraction of the linear prediction
    gae_lambda      GAE's lambda
    critic_lr, critic_epochs, critic_minibatch_size   the critic's regression on the returns
    """

    num_envs: int = 8
    steps_per_env: int = 128
    gae_lambda: float = 0.95
    max_kl: float = 0.01
    cg_iterations: int = 10
    cg_damping: float = 0.1
    line_search_steps: int = 10
    line_search_shrink: float = 0.8
    accept_ratio: float = 0.1
    normalize_advantages: bool = True
    critic_lr: float = 1e-3
    critic_epochs: int = 10
    critic_minibatch_size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        require(not self.shared_network, "shared_network", "must be false for TRPO: the trust-region step "
                "moves the actor alone and the critic is fitted by regression, so they are separate networks")
        require(self.max_kl > 0, "max_kl", f"must be > 0, got {self.max_kl}")
        require(self.cg_iterations >= 1, "cg_iterations", f"must be >= 1, got {self.cg_iterations}")
        require(self.cg_damping >= 0, "cg_damping", f"must be >= 0, got {self.cg_damping}")
        require(self.line_search_steps >= 1, "line_search_steps", "must be >= 1")
        require(0 < self.line_search_shrink < 1, "line_search_shrink", "must be in (0, 1)")
        require(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", f"must be in [0, 1], got {self.gae_lambda}")
        require(self.critic_lr > 0, "critic_lr", f"must be > 0, got {self.critic_lr}")
        require(self.critic_epochs >= 1, "critic_epochs", f"must be >= 1, got {self.critic_epochs}")
        require(self.critic_minibatch_size >= 1, "critic_minibatch_size", "must be >= 1")


@dataclass
class PPOConfig(CommonConfig):
    """PPO (seed §3.3) with GAE: minibatch epochs on the clipped (or KL-penalised) surrogate.

    objective       "clip": min(ratio A, clip(ratio, 1 - clip_coef, 1 + clip_coef) A);
                    "kl_penalty": ratio A - beta KL(pi_old || pi), beta adapted toward kl_target
    epochs, minibatch_size   passes over each batch, and the transitions per gradient step
    lr, anneal_lr   Adam's learning rate, linearly annealed to 0 over the run when anneal_lr
    clip_coef, anneal_clip   epsilon, annealed like the learning rate when anneal_clip
    clip_value      clip the critic's change to +-clip_value around its rollout values; None: off
    vf_coef, ent_coef   weights of the value loss and the entropy bonus
    max_grad_norm   clip the gradient's global norm
    kl_stop         stop this batch's epochs, before its step, at the first minibatch whose approximate KL
                    to the rollout policy exceeds it (Stable-Baselines3's order); None: off
    kl_beta, kl_target   the penalty's starting beta and the KL it steers toward
    """

    num_envs: int = 8
    steps_per_env: int = 128
    objective: Literal["clip", "kl_penalty"] = "clip"
    epochs: int = 10
    minibatch_size: int = 256
    lr: float = 3e-4
    anneal_lr: bool = True
    adam_eps: float = 1e-5
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    anneal_clip: bool = False
    clip_value: float | None = None
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    normalize_advantages: bool = True
    kl_stop: float | None = None
    kl_beta: float = 1.0
    kl_target: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        require(1 <= self.minibatch_size <= self.batch_size, "minibatch_size",
                f"must be in [1, num_envs * steps_per_env = {self.batch_size}], got {self.minibatch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", f"must be in [0, 1], got {self.gae_lambda}")
        require(0.0 < self.clip_coef < 1.0, "clip_coef", f"must be in (0, 1), got {self.clip_coef}")
        require(self.clip_value is None or self.clip_value > 0, "clip_value", "must be > 0 or null")
        require(self.max_grad_norm > 0, "max_grad_norm", f"must be > 0, got {self.max_grad_norm}")
        require(self.kl_stop is None or self.kl_stop > 0, "kl_stop", "must be > 0 or null")
        require(self.kl_beta >= 0, "kl_beta", f"must be >= 0, got {self.kl_beta}")
        require(self.kl_target > 0, "kl_target", f"must be > 0, got {self.kl_target}")


CONFIGS = {"reinforce": ReinforceConfig, "trpo": TRPOConfig, "ppo": PPOConfig}
