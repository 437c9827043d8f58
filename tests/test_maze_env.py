"""The seed's maze as a Gymnasium environment: layout, rewards, transition model, registration, errors."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import r1lab.envs  # noqa: F401  (registers r1lab/Maze-v0)
from r1lab.envs import MAZE_ID, MazeEnv, MazeLayout, random_maze_grid

UP, DOWN, LEFT, RIGHT = range(4)


def test_default_maze_is_the_seeds_3x3_grid():
    env = gym.make(MAZE_ID)
    layout = env.unwrapped.layout
    assert layout.grid == ("S.#", "...", "#.E")
    assert (layout.start, layout.end) == (0, 8)  # S1 and S9
    assert list(np.flatnonzero(layout.walls) + 1) == [3, 7]  # S3 and S7 are walls
    assert env.observation_space == gym.spaces.Discrete(9)
    assert env.action_space == gym.spaces.Discrete(4)


def test_seed_path_down_right_down_right_reaches_the_end_with_reward_one():
    env = gym.make(MAZE_ID)
    obs, info = env.reset(seed=0)
    assert (obs, info["cell"]) == (0, "S1")
    seen = []
    for action in (DOWN, RIGHT, DOWN, RIGHT):
        obs, reward, terminated, truncated, info = env.step(action)
        seen.append((info["cell"], reward, terminated))
    assert seen == [("S4", 0.0, False), ("S5", 0.0, False), ("S8", 0.0, False), ("S9", 1.0, True)]


def test_moving_into_a_wall_or_off_the_grid_costs_one_and_stays_put():
    env = MazeEnv()
    env.reset()
    assert env.step(UP)[:3] == (0, -1.0, False)  # off the grid
    assert env.step(RIGHT)[:3] == (1, 0.0, False)
    assert env.step(RIGHT)[:3] == (1, -1.0, False)  # into the wall S3


def test_step_cost_is_subtracted_from_every_move():
    env = MazeEnv(step_cost=0.1)
    env.reset()
    assert env.step(UP)[1] == pytest.approx(-1.1)
    assert env.step(DOWN)[1] == pytest.approx(-0.1)
    for action in (RIGHT, DOWN):
        env.step(action)
    assert env.step(RIGHT)[1] == pytest.approx(0.9)


def test_episode_truncates_at_max_steps_default_four_times_cells():
    env = MazeEnv()
    assert env.max_steps == 36
    env.reset()
    flags = [env.step(UP)[3] for _ in range(36)]
    assert flags == [False] * 35 + [True]
    short = MazeEnv(max_steps=3)
    short.reset()
    assert [short.step(LEFT)[3] for _ in range(3)] == [False, False, True]


def test_transition_model_matches_env_step_for_every_open_state_and_action():
    env = MazeEnv(size=7, maze_seed=2, step_cost=0.01)
    t = env.transitions
    assert t.next_state.shape == t.reward.shape == t.terminated.shape == (49, 4)
    for s in np.flatnonzero(t.is_open):
        if s == t.end:
            continue
        for a in range(4):
            env.reset()
            env.state = int(s)
            obs, reward, terminated, _, _ = env.step(a)
            assert (obs, reward, terminated) == (t.next_state[s, a], t.reward[s, a], t.terminated[s, a])
            assert env.P[s][a] == [(1.0, obs, reward, terminated)]


def test_wall_cells_are_never_reachable_states():
    t = MazeEnv(size=9, maze_seed=4).transitions
    reachable = t.next_state[t.is_open]
    assert t.is_open[reachable].all()


@pytest.mark.parametrize("kwargs", [{}, {"size": 6, "maze_seed": 1}, {"size": 11, "maze_seed": 5},
                                    {"layout": "S..\n.#.\n..E", "step_cost": 0.05}])
def test_env_passes_gymnasium_env_checker(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(MAZE_ID, render_mode="ansi", **kwargs).unwrapped)


def test_ansi_render_draws_grid_and_agent():
    env = gym.make(MAZE_ID, render_mode="ansi")
    env.reset()
    env.step(DOWN)
    assert env.render() == "agent at S4 after 1 moves\nS.#\nA..\n#.E\n"


def test_layout_text_is_dedented_and_stripped():
    env = gym.make(MAZE_ID, layout="""

        S..#
        .#..
        ...E

    """)
    assert env.unwrapped.layout.grid == ("S..#", ".#..", "...E")
    assert env.observation_space.n == 12


def test_random_mazes_are_deterministic_solvable_and_sized():
    for size in (2, 3, 10, 15, 20):
        grid = random_maze_grid(size, maze_seed=7)
        assert grid == random_maze_grid(size, maze_seed=7)
        layout = MazeLayout(grid)
        assert (layout.rows, layout.cols) == (size, size)
        assert (layout.start, layout.end) == (0, size * size - 1)
        assert layout.shortest_path_length >= 2 * (size - 1)
    assert random_maze_grid(20, 1) != random_maze_grid(20, 2)


def test_openings_add_loops_so_the_shortest_path_can_shrink():
    perfect = MazeLayout(random_maze_grid(21, 3, openings=0.0))
    looped = MazeLayout(random_maze_grid(21, 3, openings=0.3))
    open_perfect, open_looped = (~perfect.walls).sum(), (~looped.walls).sum()
    assert open_looped > open_perfect
    # a perfect maze on the room lattice is a tree: open cells - 1 == adjacent open pairs
    pairs = sum(1 for s in np.flatnonzero(~perfect.walls) for move in ((0, 1), (1, 0))
                if perfect.neighbour(int(s), move) is not None)
    assert pairs == open_perfect - 1


@pytest.mark.parametrize("text, problem", [
    ("..#\n...\n#.E", "no start"),
    ("S.#\n...\n#..", "no end"),
    ("S.S\n...\n#.E", "2 starts"),
    ("S.#\n.E.\n#.E", "2 ends"),
    ("S.#\n.x.\n#.E", "unknown character 'x' at row 2, col 2"),
    ("S.#\n..\n#.E", "ragged rows: row 2 has 2 cells"),
    ("S.#\n###\n#.E", "cannot be reached from the start"),
    ("\n\n", "empty"),
])
def test_malformed_layouts_raise_one_clear_value_error(text, problem):
    with pytest.raises(ValueError, match=problem):
        gym.make(MAZE_ID, layout=text)


def test_layout_file_errors_name_the_file(tmp_path):
    path = tmp_path / "maze.txt"
    path.write_text("S.#\n###\n#.E\n")
    with pytest.raises(ValueError, match=f"{path}: the end E .* cannot be reached"):
        MazeEnv(layout=path)
    path.write_text("S.E\n")
    assert MazeEnv(layout=path).layout.source == str(path)


def test_layout_and_size_together_are_rejected():
    with pytest.raises(ValueError, match="not both"):
        MazeEnv(layout="S.E", size=5)


def test_importing_r1lab_does_not_import_gymnasium_and_module_id_registers():
    code = ("import sys, r1lab; assert 'gymnasium' not in sys.modules; "
            "import gymnasium as gym; env = gym.make('r1lab.envs:r1lab/Maze-v0', size=4); "
            "print(env.observation_space.n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "16"
