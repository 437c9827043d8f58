"""r1lab: the road from Q-learning to DeepSeek R1 as real training code."""

__version__ = "0.1.0"


def load_policy(run_dir):
    """The trained policy of a `r1lab train` run, with `predict(obs)` as in Stable-Baselines3
    (see r1lab.policy_gradient.evaluate.TrainedPolicy)."""
    from r1lab.policy_gradient.evaluate import load_policy as load

    return load(run_dir)
