"""What every training run shares: config, run directory, metrics, checkpoints, seeding, progress, plots.

The names are imported on first use (PEP 562), so that a config class can import `require` from
here without paying for torch: the CLI builds its help from the config classes, and
`r1lab --help` stays instant.
"""

import importlib

_HOMES = {
    "ShuffledBatches": "batches",
    "ConfigError": "config", "build": "config", "load_config": "config", "parse_overrides": "config",
    "read_preset": "config", "require": "config", "to_dict": "config",
    "RunInterrupted": "interrupt", "stop_on_signals": "interrupt", "stop_requested": "interrupt",
    "plot_run": "plot", "ProgressBar": "progress",
    "Run": "run_dir", "default_run_dir": "run_dir", "read_config_file": "run_dir", "read_metrics": "run_dir",
    "write_json_atomic": "run_dir", "warmup_then_decay": "schedules",
    "rng_state": "seeding", "seed_everything": "seeding", "set_rng_state": "seeding",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'r1lab.runs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"r1lab.runs.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
