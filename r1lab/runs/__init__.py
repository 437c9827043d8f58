"""What every training run shares: config, run directory, metrics, checkpoints, seeding, progress, plots."""

from r1lab.runs.config import ConfigError, build, load_config, parse_overrides, read_preset, require, to_dict
from r1lab.runs.plot import plot_run
from r1lab.runs.progress import ProgressBar
from r1lab.runs.run_dir import Run, default_run_dir, read_config_file, read_metrics, write_json_atomic
from r1lab.runs.schedules import warmup_then_decay
from r1lab.runs.seeding import rng_state, seed_everything, set_rng_state

__all__ = [
    "ConfigError", "ProgressBar", "Run", "build", "default_run_dir", "load_config", "parse_overrides",
    "plot_run", "read_config_file", "read_metrics", "read_preset", "require", "rng_state", "seed_everything",
    "set_rng_state", "to_dict", "warmup_then_decay", "write_json_atomic",
]
