"""Tabular RL (seed §2): Q-learning, epsilon-greedy schedules, value iteration (the exact oracle), rendering."""

from r1lab.tabular.q_learning import QLearningResult, greedy_action, greedy_path, initial_q_table, q_learning
from r1lab.tabular.render import arrow_grid, greedy_arrows, maze_report, path_text, q_table
from r1lab.tabular.schedules import EpsilonSchedule
from r1lab.tabular.train import QLearningConfig, load_run, make_maze, train_maze
from r1lab.tabular.value_iteration import ValueIterationResult, shortest_path_length, value_iteration

__all__ = ["EpsilonSchedule", "QLearningConfig", "QLearningResult", "ValueIterationResult", "arrow_grid",
           "greedy_action", "greedy_arrows", "greedy_path", "initial_q_table", "load_run", "make_maze", "maze_report",
           "path_text", "q_learning", "q_table", "shortest_path_length", "train_maze", "value_iteration"]
