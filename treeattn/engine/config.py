"""The command line and YAML front end of the engine's settings (:class:`TrainConfig`).

Every setting a task offers is a flag (``--train-dir`` and ``--train_dir`` both work) and a YAML
key, as :func:`treeattn.engine.settings.task_flags` names them (the level flag is the task's,
e.g. ``--sigma``). Values are layered, later winning::

    TrainConfig defaults < the task's differences < --preset < --config file.yaml < --smoke < flags

Unknown YAML keys, unknown flags and unknown presets are errors; so are values out of range
(checked once, by :mod:`treeattn.engine.settings`, as the settings are built). :func:`dump_yaml`
writes the resolved settings in the form ``--config`` reads back.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treeattn.deprecation import renamed
from treeattn.engine.settings import TrainConfig, check_settings, check_task_settings, task_flags

if TYPE_CHECKING:
    from treeattn.engine.task import TaskSpec

__all__ = [
    "TrainConfig",
    "build_parser",
    "dump_yaml",
    "load_yaml",
    "parse_config",
    "parse_overrides",
    "validate",  # noqa: F822 (a deprecated name, see __getattr__)
]

_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TYPES = typing.get_type_hints(TrainConfig)  # the fields' real types, not annotation strings
# Settings that take one value or more: a single YAML value becomes a one-item list.
_LISTS = tuple(
    name
    for name, f in _FIELDS.items()
    if typing.get_origin(_TYPES[name]) is list and f.metadata.get("nargs") in ("+", 1)
)
# Not written to config.yaml: how this invocation was assembled or how its process keeps memory,
# not what the run is.
_NOT_DUMPED = (
    "config",
    "preset",
    "smoke",
    "resume_from_checkpoint",
    "overwrite",
    "keep_freed_memory",
)


def parse_overrides(items: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``["key=value", ...]`` into a dict; values are parsed as YAML scalars/lists.

    Raises:
        ValueError: If an item has no ``=`` or its value is not valid YAML.
    """
    if isinstance(items, Mapping):
        return dict(items)
    import yaml

    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"model override {item!r} must look like key=value, e.g. embed_dim=32")
        try:
            result[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(
                f"--model-overrides {item!r}: the value is not valid YAML "
                f"({str(err).splitlines()[0]}); write lists as [8, 16] and quote strings"
            ) from err
    return result


def build_parser(spec: TaskSpec) -> argparse.ArgumentParser:
    """Argument parser for a task; only explicitly given flags appear in the namespace."""
    parser = argparse.ArgumentParser(
        prog=f"recipes/{spec.name}.py",
        description=spec.description,
        argument_default=argparse.SUPPRESS,
        epilog="Defaults shown are the task's quick default (without --preset/--config/--smoke).",
    )
    for name, flag in task_flags(spec).items():
        f = _FIELDS[name]
        kwargs = {key: value for key, value in f.metadata.items() if key != "help"}
        default = spec.defaults.get(name, f.default)
        shown = "" if default in (dataclasses.MISSING, None) else f" (default: {default})"
        if _TYPES[name] is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        parser.add_argument(*flag.spellings, dest=name, help=flag.help + shown, **kwargs)
    return parser


def _typed(value: Any, dest: str, *, path: Path, key: str) -> Any:
    """Convert a YAML value with the field's argparse type (each item of a list)."""
    kind = _FIELDS[dest].metadata.get("type")
    if kind is None or value is None:
        return value
    try:
        return [kind(v) for v in value] if isinstance(value, list) else kind(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"--config {path}: {key}: {value!r} is not a valid {kind.__name__}"
        ) from err


def load_yaml(path: str | Path, spec: TaskSpec) -> dict[str, Any]:
    """Read a YAML settings file; keys are flag names (dashes or underscores).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a mapping or has unknown keys.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path} does not exist; give the path of a YAML file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ValueError(
            f"--config {path} is not valid YAML{line}: {getattr(err, 'problem', None) or err}; "
            "fix the file (keys are flag names, e.g. 'batch_size: 8')"
        ) from err
    if not isinstance(values, dict):
        raise ValueError(f"--config {path} must hold a mapping of settings, got {type(values)}")
    flags = task_flags(spec)
    aliases = {name: name for name in flags} | {flag.key: name for name, flag in flags.items()}
    result, unknown = {}, []
    for key, value in values.items():
        dest = aliases.get(str(key).replace("-", "_"))
        if dest is None or dest == "config":
            unknown.append(key)
        else:
            result[dest] = _typed(value, dest, path=path, key=key)
    if unknown:
        raise ValueError(
            f"--config {path}: unknown keys {unknown}; valid keys are the flag names of "
            f"recipes/{spec.name}.py --help"
        )
    return result


def _layered(spec: TaskSpec, cli: dict[str, Any]) -> dict[str, Any]:
    """The settings given: task defaults < preset < YAML < --smoke < flags."""
    from_yaml = load_yaml(cli["config"], spec) if "config" in cli else {}
    preset_name = cli.get("preset", from_yaml.get("preset"))
    if preset_name is not None and preset_name not in spec.presets:
        raise ValueError(
            f"unknown --preset {preset_name!r} for {spec.name}; "
            f"choose one of {sorted(spec.presets)}"
        )
    values: dict[str, Any] = {**spec.defaults}
    values.update(spec.presets.get(preset_name, {}) if preset_name else {})
    values.update(from_yaml)
    if cli.get("smoke", from_yaml.get("smoke", False)):
        values.update(spec.smoke)
    values.update(cli)
    return values


def parse_config(spec: TaskSpec, argv: Sequence[str] | None = None) -> TrainConfig:
    """Build the run's :class:`TrainConfig` from task defaults, preset, YAML, smoke and flags.

    Raises:
        ValueError: For an unknown preset or invalid values.
    """
    values = _layered(spec, vars(build_parser(spec).parse_args(argv)))
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"task {spec.name!r} sets unknown settings {unknown}")
    values["model_overrides"] = parse_overrides(values.get("model_overrides", {}))
    for name in _LISTS:
        if name in values and not isinstance(values[name], list | tuple):
            values[name] = [values[name]]
    return check_settings(check_task_settings(TrainConfig(**values), spec))


def dump_yaml(cfg: TrainConfig, spec: TaskSpec, path: str | Path) -> None:
    """Write the resolved settings to ``path`` so that ``--config path`` reproduces the run.

    Args:
        cfg: The run's settings.
        spec: Its task (settings the task does not offer are left out).
        path: The YAML file to write.
    """
    import yaml

    offered = task_flags(spec)
    values = {
        name: value
        for name, value in dataclasses.asdict(cfg).items()
        if name not in _NOT_DUMPED and name in offered
    }
    if "tile" in values and values["tile"] is None:
        values["tile"] = 0  # the form config.yaml has always had for whole images (read as None)
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, {"validate": check_settings})
