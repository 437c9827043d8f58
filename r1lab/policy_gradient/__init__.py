"""§3 of the seed as training code: REINFORCE, TRPO and PPO with GAE on Gymnasium vector envs.

    from r1lab.policy_gradient import PPOConfig, train_ppo
    summary = train_ppo(PPOConfig(env_id="CartPole-v1"), "runs/ppo-cartpole")

One file per algorithm (reinforce.py, trpo.py, ppo.py), each reading top to bottom through the five
steps of docs/design.md; policies.py holds the MLP actor-critics, rollout.py the vector envs and the
rollout buffer, job.py what every job does around its loop, evaluate.py the evaluation.
"""

from r1lab.policy_gradient.config import CONFIGS, CommonConfig, PPOConfig, ReinforceConfig, TRPOConfig
from r1lab.policy_gradient.evaluate import Evaluation, TrainedPolicy, evaluate_policy, load_policy, load_run
from r1lab.policy_gradient.policies import ActorCritic, Categorical, DiagGaussian, FlatParameters, NumpyPolicy
from r1lab.policy_gradient.ppo import train_ppo
from r1lab.policy_gradient.reinforce import train_reinforce
from r1lab.policy_gradient.rollout import Rollout, RolloutCollector, make_vector_env
from r1lab.policy_gradient.trpo import train_trpo

TRAINERS = {"reinforce": train_reinforce, "trpo": train_trpo, "ppo": train_ppo}

__all__ = [
    "CONFIGS", "TRAINERS", "ActorCritic", "Categorical", "CommonConfig", "DiagGaussian", "Evaluation", "FlatParameters",
    "NumpyPolicy", "PPOConfig", "ReinforceConfig", "Rollout", "RolloutCollector", "TRPOConfig", "TrainedPolicy",
    "evaluate_policy", "load_policy", "load_run", "make_vector_env", "train_ppo", "train_reinforce", "train_trpo",
]
