"""Typed run configs: dataclasses that reject unknown keys, YAML presets, `--set key=value` overrides.

A job declares its settings as a (possibly nested) dataclass. Values arrive from three places,
applied in this order: the dataclass defaults, a YAML preset, then command-line overrides.
Every value is checked against the field's annotation, and a key that the dataclass does not
have stops the run with the list of keys it does have.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")


class ConfigError(ValueError):
    """A config value or key that cannot be used; the message names the key and its source."""


def preset_path(name: str | Path) -> Path:
    """A preset given as a file path, or by name from the presets shipped in `r1lab/configs`."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    shipped = resources.files("r1lab") / "configs" / f"{name}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    available = sorted(p.name.removesuffix(".yaml") for p in (resources.files("r1lab") / "configs").iterdir()
                       if p.name.endswith(".yaml"))
    raise ConfigError(f"preset '{name}' is neither a YAML file nor a shipped preset; shipped: {', '.join(available)}")


def read_preset(name: str | Path) -> dict[str, Any]:
    path = preset_path(name)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of keys to values, got {type(data).__name__}")
    return data


def parse_overrides(pairs: list[str] | None, source: str = "--set") -> dict[str, Any]:
    """`["ppo.clip=0.1", "seed=3"]` -> `{"ppo": {"clip": 0.1}, "seed": 3}`; values are read as YAML."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source} {pair!r}: expected key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        node = result
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return result


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: nested mappings merge key by key, other values replace."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(cls: type[C], data: dict[str, Any], source: str = "config", prefix: str = "") -> C:
    """Make `cls` from a mapping, checking every key and value; nested dataclasses recurse."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or cls.__name__}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(prefix + k) for k in unknown)}; valid keys: "
            f"{', '.join(prefix + k for k in fields)}"
        )
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}", source)
    try:
        return cls(**values)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_config(cls: type[C], preset: str | Path | list | None = None, overrides: dict[str, Any] | None = None,
                sets: list[str] | None = None) -> C:
    """Defaults, then the presets (one, or several layered in order), then `overrides` (from named
    CLI options), then `--set` pairs."""
    data: dict[str, Any] = {}
    presets = [] if preset is None else list(preset) if isinstance(preset, (list, tuple)) else [preset]
    for name in presets:
        layer = read_preset(name)
        build(cls, layer, str(preset_path(name)))  # report preset errors against the preset file itself
        data = merge(data, layer)
    source = " + ".join(str(preset_path(name)) for name in presets) or "config"
    data = merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    data = merge(data, parse_overrides(sets))
    return build(cls, data, source if not sets and not overrides else ("command line" if not presets else f"{source} + command line"))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _coerce(annotation: Any, value: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, key, source)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{source}: '{key}' = {value!r} fits none of {annotation}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: '{key}' = {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        item_type = args[0] if args else Any
        items = [_coerce(item_type, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, source, prefix=f"{key}.")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):  # YAML reads 1e5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads "1e-3" as a string
            except ValueError:
                pass
        raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
    return value


def require(condition: bool, key: str, message: str) -> None:
    """Range checks in a config's `__post_init__`: `require(self.gamma <= 1, "gamma", "must be <= 1")`."""
    if not condition:
        raise ConfigError(f"'{key}' {message}")
