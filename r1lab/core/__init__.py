"""The seed's formulas as small pure tensor functions: no I/O, no models, no state.

Every trainer calls these; every one of them is tested against a hand-computed case and a slow
loop reference (tests/test_core_*.py). docs/core.md lists each formula beside its function.
"""

from r1lab.core.losses import (
    AGGREGATION_MODES,
    KL_ESTIMATORS,
    SurrogateTerms,
    adapt_kl_coef,
    aggregate_loss,
    categorical_entropy,
    clipped_surrogate,
    explained_variance,
    kl_estimate,
    kl_k1,
    kl_k2,
    kl_k3,
    kl_penalty_surrogate,
    masked_mean,
    masked_sum,
    value_loss,
)
from r1lab.core.optimize import LineSearchResult, backtracking_line_search, conjugate_gradient
from r1lab.core.policy import (
    categorical_kl,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    importance_sampled_surrogate,
    policy_gradient_loss,
)
from r1lab.core.preference import (
    TokenRewards,
    adaptive_kl_controller,
    bradley_terry_loss,
    kl_penalised_token_rewards,
    last_token_mask,
    reward_centering,
    token_level_gae,
)
from r1lab.core.returns import (
    GROUP_SCALES,
    discounted_returns,
    episode_returns,
    gae,
    group_advantages,
    group_reward_std,
    whiten,
)
from r1lab.core.shaping import overlong_penalty

__all__ = [
    # returns.py: returns and advantages
    "discounted_returns",
    "episode_returns",
    "gae",
    "whiten",
    "group_advantages",
    "group_reward_std",
    "GROUP_SCALES",
    # shaping.py: reward shaping
    "overlong_penalty",
    # losses.py: KL, surrogates, critic, entropy, aggregation
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "kl_estimate",
    "KL_ESTIMATORS",
    "clipped_surrogate",
    "SurrogateTerms",
    "kl_penalty_surrogate",
    "adapt_kl_coef",
    "value_loss",
    "categorical_entropy",
    "masked_sum",
    "masked_mean",
    "aggregate_loss",
    "AGGREGATION_MODES",
    "explained_variance",
    # preference.py: the reward model's loss; RLHF-PPO's per-token reward, GAE and KL control
    "bradley_terry_loss",
    "reward_centering",
    "last_token_mask",
    "kl_penalised_token_rewards",
    "TokenRewards",
    "token_level_gae",
    "adaptive_kl_controller",
    # optimize.py: TRPO's solver and line search
    "conjugate_gradient",
    "backtracking_line_search",
    "LineSearchResult",
    # policy.py: action distributions and the surrogates of REINFORCE and TRPO
    "categorical_log_prob",
    "categorical_kl",
    "gaussian_log_prob",
    "gaussian_entropy",
    "gaussian_kl",
    "policy_gradient_loss",
    "importance_sampled_surrogate",
]
