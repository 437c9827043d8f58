"""Which `r1lab` command runs each job, and the command line that reproduces a run.

One table, `JOBS`, maps a job name (config.yaml's `job`) to its command words and its config
class, imported only when asked for. A run is reproduced by the command with `--set key=value`
for every key whose value differs from what the command would use unaided: the config class's
defaults, after the preset the command applies by itself (`r1lab train` picks the env's tuned
preset). A job not in the table still gets `r1lab JOB --set ...` with every key of its config.
Later jobs add themselves with `register_job`.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from r1lab.runs import build, load_config, to_dict


@dataclass(frozen=True)
class JobCommand:
    """The command words of a job (`("train", "ppo")`), its config class (a function that imports
    it: a config module pulls in its trainer), the named options the command turns a config key
    into (`{"env_id": "--env"}`), and the preset the command applies when given none."""

    words: tuple[str, ...]
    config_class: Callable[[], type] | None = None
    options: tuple[tuple[str, str], ...] = ()
    preset: Callable[[dict[str, Any]], str | None] | None = None


@dataclass
class Reproduction:
    """The command line that reruns a run, and a note when it may not be exact."""

    command: str
    note: str = ""


def _q_learning():
    from r1lab.tabular import QLearningConfig

    return QLearningConfig


def _policy_gradient(algorithm: str):
    def config_class():
        from r1lab.policy_gradient import CONFIGS

        return CONFIGS[algorithm]

    return config_class


def _env_preset(algorithm: str):
    def preset(config: dict[str, Any]) -> str | None:
        from r1lab.cli_rl import shipped_preset

        return shipped_preset(algorithm, config.get("env_id", ""))

    return preset


def _grpo_job():
    from r1lab.pipelines.r1_zero import GRPOJobConfig

    return GRPOJobConfig


def _r1_zero():
    from r1lab.pipelines.r1_zero import R1ZeroConfig

    return R1ZeroConfig


def _sft():
    from r1lab.llm.sft import SFTConfig

    return SFTConfig


def _reward_model():
    from r1lab.llm.rlhf_config import RewardModelConfig

    return RewardModelConfig


def _rlhf():
    from r1lab.pipelines.rlhf import RLHFJobConfig

    return RLHFJobConfig


def _r1():
    from r1lab.pipelines.r1 import R1Config

    return R1Config


def _pretrain():
    from r1lab.llm.tiny import PretrainConfig

    return PretrainConfig


JOBS: dict[str, JobCommand] = {
    "maze": JobCommand(("maze",), _q_learning),
    **{algorithm: JobCommand(("train", algorithm), _policy_gradient(algorithm), (("env_id", "--env"),),
                             _env_preset(algorithm)) for algorithm in ("reinforce", "trpo", "ppo")},
    "grpo": JobCommand(("grpo",), _grpo_job),
    "r1-zero": JobCommand(("r1-zero",), _r1_zero),
    "sft": JobCommand(("sft",), _sft),
    "pretrain-tiny": JobCommand(("pretrain-tiny",), _pretrain),
    "reward-model": JobCommand(("reward-model",), _reward_model),
    "rlhf": JobCommand(("rlhf",), _rlhf),
    "r1": JobCommand(("r1",), _r1),
}


def register_job(job: str, command: JobCommand) -> None:
    """Teach the report a new job's command (e.g. `register_job("rlhf", JobCommand(("rlhf",), ...))`)."""
    JOBS[job] = command


def job_command(job: str, config: dict[str, Any]) -> JobCommand:
    if job == "grpo" and config.get("template") == "r1-zero":
        job = "r1-zero"  # every GRPO run records itself as "grpo"; R1-Zero's is the one under its template
    return JOBS.get(job, JobCommand((job,)))


def reproduce(job: str, config: dict[str, Any]) -> Reproduction:
    """`r1lab WORDS [--option value ...] [--set key=value ...]` that reruns this config."""
    command = job_command(job, config)
    options = dict(command.options)
    words = ["r1lab", *command.words]
    words += [arg for key, flag in command.options if key in config for arg in (flag, str(config[key]))]
    defaults, note = command_defaults(command, config)
    changed = changed_leaves(defaults, config)
    words += [arg for key, value in changed.items() if key not in options
              for arg in ("--set", f"{key}={set_value(value)}")]
    return Reproduction(shell_line(words), note)


def command_defaults(command: JobCommand, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The config the command would build with no --set, as a mapping, and a note when it cannot
    be known (an unknown job, or a config the current r1lab no longer accepts)."""
    if command.config_class is None:
        return {}, f"r1lab has no command for the job '{' '.join(command.words)}'; every key is set"
    try:
        cls = command.config_class()
        named = {key: config[key] for key, _ in command.options if key in config}
        preset = command.preset(config) if command.preset else None
        defaults = plain(to_dict(load_config(cls, preset, overrides=named)))
        build(cls, config, "config.yaml")
    except Exception as error:  # noqa: BLE001 (an old run's config may fail in any of its checks)
        return {}, f"this run's config does not build with this r1lab ({error}); every key is set"
    return defaults, ""


def changed_leaves(defaults: dict[str, Any], config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} for the leaves of `config` that differ from `defaults`; nested mappings
    recurse, since `--set a.b=1` sets one key of a nested config."""
    changed = {}
    for key, value in config.items():
        default = defaults.get(key, _MISSING) if isinstance(defaults, dict) else _MISSING
        if isinstance(value, dict) and value and (default is _MISSING or isinstance(default, dict)):
            changed.update(changed_leaves(default if isinstance(default, dict) else {}, value, f"{prefix}{key}."))
        elif value != default:
            changed[f"{prefix}{key}"] = value
    return changed


def plain(value: Any) -> Any:
    """A config mapping as config.yaml holds it: tuples are lists there."""
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def set_value(value: Any) -> str:
    """A value as `--set` reads it back (YAML): plain where YAML reads the same value, JSON otherwise."""
    if isinstance(value, str):
        plain = value.strip() == value and value != ""
        try:
            plain = plain and yaml.safe_load(value) == value
        except yaml.YAMLError:
            plain = False
        return value if plain else json.dumps(value)
    if isinstance(value, float):
        return yaml_float(value)
    return json.dumps(value, separators=(",", ":"))


def yaml_float(value: float) -> str:
    """A float YAML reads back as that float: PyYAML wants a dot and a signed exponent (1.0e-05, not
    1e-05, which it reads as a string), and .inf / .nan."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e:
        text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent if exponent[0] in '+-' else '+' + exponent}"
    return text


def shell_line(words: list[str], width: int = 100) -> str:
    """Words quoted for a POSIX shell; a long line breaks before each option, with a backslash."""
    quoted = [shlex.quote(word) for word in words]
    line = " ".join(quoted)
    if len(line) <= width:
        return line
    pieces = [quoted[0]]
    for word in quoted[1:]:
        if word.startswith("--"):
            pieces.append(" \\\n    " + word)
        else:
            pieces.append(" " + word)
    return "".join(pieces)


_MISSING = object()
