"""r1lab: the road from Q-learning to DeepSeek R1 as real training code."""

__version__ = "0.1.0"
