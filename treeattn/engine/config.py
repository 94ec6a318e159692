"""The engine's shared settings: one dataclass, its command line and YAML files.

Every field of :class:`TrainConfig` is a flag (``--train-dir`` and ``--train_dir`` both work) and
a YAML key. The field defaults are the one tier of defaults: the quick run most recipes share;
a task states only where it differs. Values are layered, later winning::

    TrainConfig defaults < the task's differences < --preset < --config file.yaml < --smoke < flags

Unknown YAML keys, unknown flags and unknown presets are errors; so are values out of range
(checked once, here, where they enter). :func:`dump_yaml` writes the resolved settings in the
form ``--config`` reads back.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treeattn.engine.phases import crop_phases

if TYPE_CHECKING:
    from treeattn.engine.task import TaskSpec

__all__ = [
    "TrainConfig",
    "build_parser",
    "dump_yaml",
    "load_yaml",
    "parse_config",
    "parse_overrides",
    "validate",
]


def _opt(default: Any, help: str, **argparse_kwargs: Any) -> Any:
    """An immutable-default dataclass field carrying its argparse help and keyword arguments."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


def _meta(help: str, **argparse_kwargs: Any) -> dict[str, Any]:
    """Field metadata: argparse help and keyword arguments."""
    return {"help": help, **argparse_kwargs}


@dataclass
class TrainConfig:
    """All settings of one training run (see ``--help`` of any recipe).

    The defaults are the quick run: a tiny U-shape model for ~8 minutes on 2 CPU cores.
    """

    # data
    train_dir: str | None = _opt(None, "folder of clean training images (default: embedded)")
    test_dir: list[str] = field(
        default_factory=list,
        metadata=_meta("folder(s) of clean test images (default: embedded)", nargs="+"),
    )
    train_lq: list[str] = field(
        default_factory=list,
        metadata=_meta(
            "degraded training folder(s), 2 = left right (default: synthetic)", nargs="+"
        ),
    )
    train_gt: str | None = _opt(None, "ground-truth training folder (paired tasks)")
    test_lq: list[str] = field(
        default_factory=list,
        metadata=_meta("degraded test folder(s) (paired; 2 = left right)", nargs="+"),
    )
    test_gt: str | None = _opt(None, "ground-truth test folder (paired tasks)")
    channels: int = _opt(3, "image channels: 1 gray, 3 RGB", type=int, choices=(1, 3))
    level: list[float] = field(
        default_factory=list, metadata=_meta("degradation level: one value, or LOW HIGH")
    )
    test_level: list[float] = field(
        default_factory=list, metadata=_meta("test degradation level (default: the training one)")
    )
    dual_pixel: bool = _opt(False, "left+right dual-pixel views as input (6 channels)")
    patch_size: int = _opt(
        48, "training crop side of the network input (×scale for the SR ground truth)", type=int
    )
    batch_size: int = _opt(8, "batch size per process", type=int)
    patch_schedule: list[str] = field(
        default_factory=list,
        metadata=_meta(
            "later crop phases as STEP:PATCH:BATCH ... (e.g. 8000:128:2 16000:176:1); the phase "
            "at step 0 is --patch-size / --batch-size",
            nargs="+",
        ),
    )
    repeat: int = _opt(1, "repeat the training set this often per epoch", type=int)
    num_workers: int = _opt(0, "data-loader worker processes", type=int)
    # model
    model: str = _opt("hiir_unet_tiny", "registry name of the model (treeattn.models)")
    model_overrides: dict[str, Any] = field(
        default_factory=dict, metadata=_meta("model settings as key=value ...", nargs="+")
    )
    init_from: str | None = _opt(
        None,
        "start from trained weights (weights only): a shipped model name, a save_pretrained "
        "folder, a run folder or RUN/step_N; without --model the run takes its architecture",
    )
    # optimisation
    max_steps: int = _opt(1200, "optimizer steps of the whole run", type=int)
    max_minutes: float = _opt(
        8.5, "also stop training after this many minutes (0 = off)", type=float
    )
    optimizer: str = _opt("adamw", "adam or adamw")
    lr: float = _opt(2e-3, "peak learning rate", type=float)
    weight_decay: float = _opt(0.0, "weight decay", type=float)
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.99], metadata=_meta("Adam betas", type=float, nargs=2)
    )
    scheduler: str = _opt("cosine", "cosine or multistep (after the warm-up)")
    warmup_steps: int = _opt(50, "linear warm-up steps", type=int)
    min_lr_ratio: float = _opt(0.01, "final cosine LR as a fraction of --lr (0 to 1)", type=float)
    milestones: list[float] = field(
        default_factory=lambda: [0.5, 0.75],
        metadata=_meta("multistep: fractions of the run", type=float, nargs="+"),
    )
    gamma: float = _opt(0.5, "multistep decay factor", type=float)
    loss: str = _opt("l1", "pixel loss: l1, charbonnier or smooth_l1")
    perceptual_weight: float = _opt(0.0, "weight of the VGG perceptual loss", type=float)
    vgg_weights: str | None = _opt(None, "local VGG-19 weights file for the perceptual loss")
    ema_decay: float = _opt(0.0, "EMA of weights (0 = off, e.g. 0.999)", type=float)
    grad_clip: float = _opt(0.0, "clip the gradient norm to this (0 = off)", type=float)
    gradient_accumulation_steps: int = _opt(1, "micro-batches per optimizer step", type=int)
    mixed_precision: str | None = _opt(
        None,
        "no, bf16 or fp16 (default: what `accelerate launch`/`accelerate config` set, else no)",
        choices=("no", "bf16", "fp16"),
    )
    cpu: bool = _opt(False, "train on CPU even when an accelerator is present")
    threads: int = _opt(
        0, "CPU threads per process (0 = the available cores / local processes)", type=int
    )
    seed: int = _opt(0, "random seed (model init, data order, degradations)", type=int)
    # outputs, evaluation, checkpoints
    output_dir: str = _opt("outputs/run", "run folder: logs, checkpoints, samples, report")
    checkpointing_steps: int = _opt(0, "save a step_N checkpoint every N steps (0 = end)", type=int)
    keep_checkpoints: int = _opt(3, "keep this many newest checkpoints", type=int)
    resume_from_checkpoint: str | None = _opt(None, "PATH to a step_N folder, or 'latest'")
    overwrite: bool = _opt(False, "clear an --output-dir that holds another run, then train")
    val_every: int = _opt(400, "validate every N steps (0 = only at the end)", type=int)
    tile: int = _opt(0, "evaluate in tiles of this size (0 = whole images)", type=int)
    tile_overlap: int = _opt(32, "tile overlap in pixels", type=int)
    save_images: int = _opt(4, "restored test images saved per validation", type=int)
    log_every: int = _opt(10, "log the training loss every N steps", type=int)
    with_tracking: bool = _opt(True, "also log to tensorboard when it is installed")
    smoke: bool = _opt(False, "a seconds-long run on tiny settings (CI)")
    preset: str | None = _opt(None, "named settings of the task, e.g. 'paper'")
    config: str | None = _opt(None, "YAML file of settings (keys = flag names)")


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TASK_FIELDS = ("level", "test_level", "dual_pixel")  # offered only by tasks that use them


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


def _flag_names(name: str, spec: TaskSpec) -> list[str]:
    if name in ("level", "test_level"):
        prefix = "--test-" if name == "test_level" else "--"
        return [f"{prefix}{spec.level.flag}"]
    return list(dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}"]))


def build_parser(spec: TaskSpec) -> argparse.ArgumentParser:
    """Argument parser for a task; only explicitly given flags appear in the namespace."""
    parser = argparse.ArgumentParser(
        prog=f"recipes/{spec.name}.py",
        description=spec.description,
        argument_default=argparse.SUPPRESS,
        epilog="Defaults shown are the task's quick default (without --preset/--config/--smoke).",
    )
    for name, f in _FIELDS.items():
        if name in _TASK_FIELDS and not spec.offers(name):
            continue
        kwargs = dict(f.metadata)
        default = spec.defaults.get(name, f.default)
        if default not in (dataclasses.MISSING, None):
            kwargs["help"] += f" (default: {default})"
        if name == "level":
            kwargs.update(help=f"{spec.level.help} (default: {default})", type=float, nargs="+")
        if name == "test_level":
            kwargs.update(type=float, nargs=1)
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        parser.add_argument(*_flag_names(name, spec), dest=name, **kwargs)
    return parser


def _typed(value: Any, dest: str, *, path: Path, key: str) -> Any:
    """Convert a YAML value with the field's argparse type (each item of a list)."""
    kind = {"level": float, "test_level": float}.get(dest, _FIELDS[dest].metadata.get("type"))
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
    aliases = {name: name for name in _FIELDS if name not in _TASK_FIELDS or spec.offers(name)}
    if spec.level is not None:
        aliases[spec.level.flag.replace("-", "_")] = "level"
        aliases[f"test_{spec.level.flag.replace('-', '_')}"] = "test_level"
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


def parse_config(spec: TaskSpec, argv: Sequence[str] | None = None) -> TrainConfig:
    """Build the run's :class:`TrainConfig` from task defaults, preset, YAML, smoke and flags.

    Raises:
        ValueError: For an unknown preset or invalid values.
    """
    cli = vars(build_parser(spec).parse_args(argv))
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
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"task {spec.name!r} sets unknown settings {unknown}")
    _reject_other_data_kind(spec, values)
    values["model_overrides"] = parse_overrides(values.get("model_overrides", {}))
    for name in ("level", "test_level", "test_dir", "train_lq", "test_lq"):
        if name in values and not isinstance(values[name], list | tuple):
            values[name] = [values[name]]
    cfg = validate(TrainConfig(**values))
    if spec.level is not None:
        for name in ("level", "test_level"):
            spec.level.check(getattr(cfg, name), flag=_flag_names(name, spec)[0])
    return cfg


# Not written to config.yaml: how this invocation was assembled, not what the run is.
_NOT_DUMPED = ("config", "preset", "smoke", "resume_from_checkpoint", "overwrite")


def dump_yaml(cfg: TrainConfig, spec: TaskSpec, path: str | Path) -> None:
    """Write the resolved settings to ``path`` so that ``--config path`` reproduces the run.

    Args:
        cfg: The run's settings.
        spec: Its task (settings the task does not offer are left out).
        path: The YAML file to write.
    """
    import yaml

    values = {
        name: value
        for name, value in dataclasses.asdict(cfg).items()
        if name not in _NOT_DUMPED and (name not in _TASK_FIELDS or spec.offers(name))
    }
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))


# Folder settings each kind of task reads; the others would be silently ignored, so they raise.
_FOLDERS = {
    "degraded": ("train_dir", "test_dir"),
    "paired": ("train_lq", "train_gt", "test_lq", "test_gt"),
}


def _reject_other_data_kind(spec: TaskSpec, values: dict[str, Any]) -> None:
    ignored = [
        name
        for kind, names in _FOLDERS.items()
        if kind != spec.data
        for name in names
        if values.get(name)
    ]
    if ignored:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in ignored)
        wanted = ", ".join(f"--{n.replace('_', '-')}" for n in _FOLDERS[spec.data])
        raise ValueError(
            f"{spec.name} trains on {spec.data} data and does not read {flags}; use {wanted}"
        )


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check value ranges that argparse cannot; return ``cfg`` unchanged.

    Raises:
        ValueError: Naming the first bad setting and its valid range.
    """
    _check_finite(cfg)
    positive = ("patch_size", "batch_size", "repeat", "max_steps", "gradient_accumulation_steps")
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    nonnegative = ("checkpointing_steps", "val_every", "save_images", "num_workers", "tile")
    for name in (*nonnegative, "threads", "max_minutes"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.warmup_steps < 0 or cfg.warmup_steps > cfg.max_steps:
        raise ValueError(
            f"--warmup-steps {cfg.warmup_steps} must be between 0 and --max-steps {cfg.max_steps}"
        )
    if cfg.tile and not 0 <= cfg.tile_overlap < cfg.tile:
        raise ValueError(
            f"--tile-overlap {cfg.tile_overlap} must be >= 0 and smaller than --tile {cfg.tile}"
        )
    ranges = {  # name: (low, high, whether low itself is allowed)
        "lr": (0.0, math.inf, False),
        "weight_decay": (0.0, math.inf, True),
        "grad_clip": (0.0, math.inf, True),
        "min_lr_ratio": (0.0, 1.0, True),
        "gamma": (0.0, 1.0, False),
        "perceptual_weight": (0.0, math.inf, True),
    }
    for name, (low, high, closed) in ranges.items():
        value = getattr(cfg, name)
        if not (low <= value if closed else low < value) or value > high:
            upper = f" and <= {high:g}" if math.isfinite(high) else ""
            bounds = f"{'>=' if closed else '>'} {low:g}{upper}"
            raise ValueError(f"--{name.replace('_', '-')} must be {bounds}, got {value}")
    if not 0 <= cfg.ema_decay < 1:
        raise ValueError(f"--ema-decay must be in [0, 1) (0 = off), got {cfg.ema_decay}")
    if any(not 0 <= b < 1 for b in cfg.betas):
        raise ValueError(f"--betas {cfg.betas} must both be in [0, 1), e.g. 0.9 0.99")
    if cfg.overwrite and cfg.resume_from_checkpoint:
        raise ValueError(
            "--overwrite clears the output folder, --resume-from-checkpoint continues it; "
            "pass only one of them"
        )
    if cfg.keep_checkpoints < 1:
        raise ValueError(f"--keep-checkpoints must be >= 1, got {cfg.keep_checkpoints}")
    crop_phases(
        patch_size=cfg.patch_size,
        batch_size=cfg.batch_size,
        schedule=cfg.patch_schedule,
        max_steps=cfg.max_steps,
    )
    if len(cfg.level) > 2:
        raise ValueError(f"degradation level {cfg.level} must be one value or LOW HIGH")
    if len(cfg.level) == 2 and cfg.level[0] > cfg.level[1]:
        raise ValueError(f"blind level range {cfg.level} must be LOW HIGH with LOW <= HIGH")
    return cfg


def _check_finite(cfg: TrainConfig) -> None:
    """NaN or infinity in any numeric setting would train silently wrong; refuse it."""
    for name, value in dataclasses.asdict(cfg).items():
        if name in ("level", "test_level"):  # checked with the task's flag name and range
            continue
        values = value if isinstance(value, list) else [value]
        numbers = [v for v in values if isinstance(v, float)]
        if any(not math.isfinite(v) for v in numbers):
            flag = f"--{name.replace('_', '-')}"
            raise ValueError(f"{flag} must be a finite number, got {value}")
