"""Gymnasium environments; importing this package registers them.

    import gymnasium as gym
    import r1lab.envs  # registers r1lab/Maze-v0
    env = gym.make("r1lab/Maze-v0")                       # the seed's 3x3 maze
    env = gym.make("r1lab/Maze-v0", layout="S.#\\n...\\n#.E")
    env = gym.make("r1lab/Maze-v0", size=20, maze_seed=3)  # a random maze

Without the import, `gym.make("r1lab.envs:r1lab/Maze-v0")` imports this package itself.
`import r1lab` alone does not import gymnasium.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from r1lab.envs.layouts import SEED_MAZE, MazeLayout, cell_name, random_maze_grid
from r1lab.envs.maze import ACTIONS, ARROWS, MazeEnv, MazeTransitions, make_layout, maze_transitions

MAZE_ID = "r1lab/Maze-v0"

if MAZE_ID not in registry:
    # max_episode_steps stays None: the env truncates itself at its own max_steps
    register(id=MAZE_ID, entry_point="r1lab.envs.maze:MazeEnv")

__all__ = ["ACTIONS", "ARROWS", "MAZE_ID", "SEED_MAZE", "MazeEnv", "MazeLayout", "MazeTransitions", "cell_name",
           "make_layout", "maze_transitions", "random_maze_grid"]
