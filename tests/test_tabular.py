"""Tabular RL: Q-learning against the value-iteration oracle, schedules, exploration, rendering."""


import numpy as np
import pytest

from r1lab.envs import MazeEnv
from r1lab.runs import ConfigError
from r1lab.tabular import (
    EpsilonSchedule,
    arrow_grid,
    greedy_action,
    greedy_path,
    initial_q_table,
    path_text,
    q_learning,
    q_table,
    shortest_path_length,
    value_iteration,
)

SEED_MAZE = MazeEnv()
DECAY = EpsilonSchedule(1.0, 0.05, 100)
NEVER_EXPLORE = EpsilonSchedule(0.0, 0.0, kind="constant")


def train(env, episodes=200, schedule=DECAY, seed=0, **kwargs):
    options = dict(alpha=0.5, gamma=0.9, q_init=1.0) | kwargs
    return q_learning(env.transitions, episodes, options.pop("alpha"), options.pop("gamma"), schedule,
                      env.max_steps, np.random.default_rng(seed), **options)


def test_value_iteration_on_the_seed_maze_gives_discounted_distance_to_the_end():
    result = value_iteration(SEED_MAZE.transitions, gamma=0.9)
    # V*(s) = gamma^(moves to the end - 1): the +1 comes on the last move
    expected = {1: 0.729, 2: 0.81, 4: 0.81, 5: 0.9, 6: 1.0, 8: 1.0, 9: 0.0, 3: 0.0, 7: 0.0}
    for cell, value in expected.items():
        assert result.v[cell - 1] == pytest.approx(value)
    assert result.q[0].tolist() == pytest.approx([-1 + 0.9 * 0.729, 0.729, -1 + 0.9 * 0.729, 0.729])
    assert shortest_path_length(SEED_MAZE.transitions) == 4


def test_value_iteration_satisfies_the_bellman_optimality_equation_on_a_random_maze():
    t = MazeEnv(size=15, maze_seed=3, step_cost=0.01).transitions
    result = value_iteration(t, gamma=0.95)
    backup = t.reward + 0.95 * (~t.terminated) * result.v[t.next_state]
    assert np.abs(backup.max(axis=1) - result.v)[t.is_open].max() < 1e-9
    path, reached = greedy_path(result.q, t, np.random.default_rng(0))
    assert reached and len(path) - 1 == shortest_path_length(t)


@pytest.mark.parametrize("seed", range(20))
def test_q_learning_finds_a_four_move_path_on_the_seed_maze_for_any_seed(seed):
    result = train(SEED_MAZE, seed=seed)
    path, reached = greedy_path(result.q, SEED_MAZE.transitions, np.random.default_rng(seed))
    assert reached and len(path) - 1 == 4
    assert path[0] == 0 and path[-1] == 8


def test_q_learning_with_alpha_one_converges_to_value_iterations_q_star_on_the_seed_maze():
    result = train(SEED_MAZE, episodes=300, alpha=1.0)
    optimum = value_iteration(SEED_MAZE.transitions, gamma=0.9)
    assert np.abs(result.q - optimum.q).max() < 1e-12


def test_terminal_move_does_not_bootstrap():
    t = SEED_MAZE.transitions
    q = initial_q_table(t, 0.0)
    q[8] = 100.0  # the end's row would poison the target if the update bootstrapped past the end
    result = q_learning(t, 300, 1.0, 0.9, DECAY, 36, np.random.default_rng(0), q=q)
    assert result.q[7, 3] == pytest.approx(1.0)  # S8 --right--> S9: target r = 1, not 1 + 0.9 * 100


@pytest.mark.parametrize("size, maze_seed", [(10, k) for k in range(6)] + [(20, k) for k in range(6)] + [(31, 0)])
def test_q_learning_greedy_path_matches_value_iteration_on_random_mazes(size, maze_seed):
    env = MazeEnv(size=size, maze_seed=maze_seed)
    episodes = max(200, 2 * int(env.transitions.is_open.sum()))  # the job's default
    result = train(env, episodes=episodes, schedule=EpsilonSchedule(1.0, 0.05, episodes // 2))
    path, reached = greedy_path(result.q, env.transitions, np.random.default_rng(0))
    assert reached and len(path) - 1 == shortest_path_length(env.transitions)


def test_epsilon_zero_gets_stuck_while_epsilon_greedy_finds_the_optimal_path():
    """Seed §2.2.1. From a zero Q table, a purely greedy agent whose ties go to the first action
    (what np.argmax does) bumps into the top edge at S1 (up: -1), then takes down to S4 (0), where
    up leads back to S1 (0): moves worth 0 leave the zero table unchanged, so it shuttles S1 <-> S4
    forever and never sees the end. The same learner with epsilon-greedy exploration finds it."""
    for seed in range(5):
        stuck = train(SEED_MAZE, schedule=NEVER_EXPLORE, seed=seed, q_init=0.0, tie_break="first")
        assert not stuck.reached_goal.any()
        assert (stuck.episode_length == SEED_MAZE.max_steps).all()  # every episode truncated
        path, reached = greedy_path(stuck.q, SEED_MAZE.transitions)
        assert not reached and path[:5] == [0, 3, 0, 3, 0]
        explorer = train(SEED_MAZE, seed=seed, q_init=0.0, tie_break="first")
        path, reached = greedy_path(explorer.q, SEED_MAZE.transitions)
        assert reached and len(path) - 1 == 4


def test_greedy_ties_are_broken_at_random_from_the_seeded_generator():
    row = np.array([0.5, 0.9, 0.1, 0.9])
    draws = {greedy_action(row, np.random.default_rng(seed)) for seed in range(30)}
    assert draws == {1, 3}  # both optimal actions, never the others: "the solution is not unique"
    assert greedy_action(row) == 1
    paths = {tuple(greedy_path(value_iteration(SEED_MAZE.transitions, 0.9).q, SEED_MAZE.transitions,
                               np.random.default_rng(seed))[0]) for seed in range(30)}
    assert (0, 3, 4, 7, 8) in paths and (0, 1, 4, 5, 8) in paths


def test_same_seed_gives_the_same_table_and_different_seeds_differ():
    env = MazeEnv(size=8, maze_seed=1)
    a, b, c = train(env, seed=3), train(env, seed=3), train(env, seed=4)
    assert np.array_equal(a.q, b.q) and np.array_equal(a.episode_length, b.episode_length)
    assert not np.array_equal(a.episode_length, c.episode_length)


@pytest.mark.parametrize("kind, expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0]),
    ("linear", [1.0, 0.55, 0.1, 0.1]),
    ("exponential", [1.0, 0.1 ** 0.5, 0.1, 0.1]),
])
def test_epsilon_schedules_decay_from_start_to_end(kind, expected):
    schedule = EpsilonSchedule(1.0, 0.1, 10, kind)
    assert [schedule(e) for e in (0, 5, 10, 50)] == pytest.approx(expected)


def test_epsilon_schedule_never_rises_and_validates():
    assert EpsilonSchedule(0.0, 0.05, 10)(5) == 0.0
    assert EpsilonSchedule(decay_episodes=None).for_episodes(300).decay_episodes == 150
    with pytest.raises(ConfigError, match="epsilon.start"):
        EpsilonSchedule(start=1.5)
    with pytest.raises(ConfigError, match="exponential"):
        EpsilonSchedule(1.0, 0.0, 10, "exponential")


def test_renderings_show_the_seeds_table_arrows_and_path():
    from rich.console import Console

    optimum = value_iteration(SEED_MAZE.transitions, gamma=0.9)
    path = [0, 3, 4, 7, 8]
    assert path_text(path) == "S1 → S4 → S5 → S8 → S9"
    assert arrow_grid(optimum.q, SEED_MAZE.layout, path).plain == "↓ ↓ #\n→ ↓ ↓\n# → E"
    console = Console(width=80, record=True)
    console.print(q_table(optimum.q, SEED_MAZE.layout))
    text = console.export_text()
    rows = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert rows == ["s1 (S)", "s2", "s4", "s5", "s6", "s8", "s9 (E)"]  # walls S3 and S7 omitted
    assert "up" in text and "right" in text and "0.729" in text
    assert arrow_grid(np.zeros((9, 4)), SEED_MAZE.layout).plain == "· · #\n· · ·\n# · E"
