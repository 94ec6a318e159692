"""The settings of one training run: the :class:`TrainConfig` dataclass and its checks.

Every field is one setting; its default is the one tier of defaults, the quick run most recipes
share (a task states only where it differs, see :class:`treeattn.engine.task.TaskSpec`). The
command line and YAML front end that fills it is :mod:`treeattn.engine.config`.

:func:`task_flags` is the one place where a task's settings become flags: every field the task
offers, by its name with dashes, except the degradation level, whose flag the task declares once
(:attr:`TaskSpec.level <treeattn.engine.task.TaskSpec>`, e.g. ``--sigma`` / ``--test-sigma``).
The checks come in two parts: :func:`check_task_settings` (what depends on the task: its data
kind, its level range) and :func:`check_settings` (value ranges of any run).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from treeattn.deprecation import renamed
from treeattn.engine.phases import crop_phases
from treeattn.ops.tiling import check_tile_overlap

if TYPE_CHECKING:
    from treeattn.engine.task import TaskSpec

__all__ = [
    "TASK_SETTINGS",
    "Flag",
    "TrainConfig",
    "check_settings",
    "check_task_settings",
    "task_flags",
    "validate",  # noqa: F822 (a deprecated name, see __getattr__)
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
        default_factory=list,
        metadata=_meta("degradation level: one value, or LOW HIGH", type=float, nargs="+"),
    )
    test_level: list[float] = field(
        default_factory=list,
        metadata=_meta("test degradation level (default: the training one)", type=float, nargs=1),
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
    keep_freed_memory: bool = _opt(
        True,
        "keep freed memory in the process for reuse (glibc: faster CPU steps; the process "
        "then holds its peak memory until it ends)",
    )
    seed: int = _opt(0, "random seed (model init, data order, degradations)", type=int)
    # outputs, evaluation, checkpoints
    output_dir: str = _opt("outputs/run", "run folder: logs, checkpoints, samples, report")
    checkpointing_steps: int = _opt(0, "save a step_N checkpoint every N steps (0 = end)", type=int)
    keep_checkpoints: int = _opt(3, "keep this many newest checkpoints", type=int)
    resume_from_checkpoint: str | None = _opt(None, "PATH to a step_N folder, or 'latest'")
    overwrite: bool = _opt(False, "clear an --output-dir that holds another run, then train")
    val_every: int = _opt(400, "validate every N steps (0 = only at the end)", type=int)
    tile: int | None = _opt(
        None, "evaluate in tiles of this size (default, or 0: whole images)", type=int
    )
    tile_overlap: int = _opt(32, "tile overlap in pixels", type=int)
    save_images: int = _opt(4, "restored test images saved per validation", type=int)
    log_every: int = _opt(10, "log the training loss every N steps", type=int)
    with_tracking: bool = _opt(True, "also log to tensorboard when it is installed")
    smoke: bool = _opt(False, "a seconds-long run on tiny settings (CI)")
    preset: str | None = _opt(None, "named settings of the task, e.g. 'paper'")
    config: str | None = _opt(None, "YAML file of settings (keys = flag names)")

    def __post_init__(self) -> None:
        # No tiling is None everywhere; a 0 (what settings files of older runs hold, and what
        # --tile 0 says) means the same.
        if type(self.tile) is int and self.tile == 0:
            self.tile = None


#: Settings only some tasks offer (:meth:`treeattn.engine.task.TaskSpec.offers`).
TASK_SETTINGS = ("level", "test_level", "dual_pixel")


@dataclass(frozen=True)
class Flag:
    """How one setting appears on a task's command line and in its YAML files.

    Attributes:
        setting: The :class:`TrainConfig` field it sets.
        name: The flag without its leading dashes (``patch-size``, ``sigma``, ``test-sigma``).
        help: Its help text.
    """

    setting: str
    name: str
    help: str

    @property
    def option(self) -> str:
        """The flag as written in messages: ``--patch-size``."""
        return f"--{self.name}"

    @property
    def spellings(self) -> list[str]:
        """Every accepted spelling: with dashes and with underscores (``--patch_size``)."""
        return list(dict.fromkeys([self.option, f"--{self.key}"]))

    @property
    def key(self) -> str:
        """Its YAML key (``patch_size``; ``patch-size`` is accepted too)."""
        return self.name.replace("-", "_")


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def task_flags(spec: TaskSpec) -> dict[str, Flag]:
    """The flags of a task, by setting: every :class:`TrainConfig` field the task offers.

    The one place where a task's level flag becomes flags: with ``LevelSpec(flag="sigma")``
    the ``level`` setting is ``--sigma`` (with the task's help) and ``test_level`` is
    ``--test-sigma``. Every other setting is its field name with dashes; ``level``,
    ``test_level`` and ``dual_pixel`` are left out for tasks that do not offer them.

    Args:
        spec: The task.
    """
    flags = {
        name: Flag(setting=name, name=name.replace("_", "-"), help=f.metadata["help"])
        for name, f in _FIELDS.items()
        if name not in TASK_SETTINGS or spec.offers(name)
    }
    if spec.level is not None:
        flags["level"] = Flag(setting="level", name=spec.level.flag, help=spec.level.help)
        test = flags["test_level"]
        flags["test_level"] = dataclasses.replace(test, name=f"test-{spec.level.flag}")
    return flags


# Folder settings each kind of task reads; the others would be silently ignored, so they raise.
_FOLDERS = {
    "degraded": ("train_dir", "test_dir"),
    "paired": ("train_lq", "train_gt", "test_lq", "test_gt"),
}


def _reject_other_data_kind(cfg: TrainConfig, spec: TaskSpec) -> None:
    ignored = [
        name
        for kind, names in _FOLDERS.items()
        if kind != spec.data
        for name in names
        if getattr(cfg, name)
    ]
    if ignored:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in ignored)
        wanted = ", ".join(f"--{n.replace('_', '-')}" for n in _FOLDERS[spec.data])
        raise ValueError(
            f"{spec.name} trains on {spec.data} data and does not read {flags}; use {wanted}"
        )


def check_task_settings(cfg: TrainConfig, spec: TaskSpec) -> TrainConfig:
    """Check what depends on the task; return ``cfg`` unchanged.

    Refuses data folders of the other data kind (they would be ignored) and levels outside the
    task's range (:meth:`treeattn.engine.task.LevelSpec.check`), naming the task's flags.

    Args:
        cfg: The settings.
        spec: The task they are for.

    Raises:
        ValueError: Naming the first bad setting by its flag and the fix.
    """
    _reject_other_data_kind(cfg, spec)
    if spec.level is not None:
        flags = task_flags(spec)
        for name in ("level", "test_level"):
            spec.level.check(getattr(cfg, name), flag=flags[name].option)
    return cfg


def check_settings(cfg: TrainConfig) -> TrainConfig:
    """Check value ranges that argparse cannot; return ``cfg`` unchanged.

    Raises:
        ValueError: Naming the first bad setting and its valid range.
    """
    _check_finite(cfg)
    _check_counts(cfg)
    _check_ranges(cfg)
    if cfg.overwrite and cfg.resume_from_checkpoint:
        raise ValueError(
            "--overwrite clears the output folder, --resume-from-checkpoint continues it; "
            "pass only one of them"
        )
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


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _check_finite(cfg: TrainConfig) -> None:
    """NaN or infinity in any numeric setting would train silently wrong; refuse it."""
    for name, value in dataclasses.asdict(cfg).items():
        values = value if isinstance(value, list) else [value]
        numbers = [v for v in values if isinstance(v, float)]
        if any(not math.isfinite(v) for v in numbers):
            raise ValueError(f"{_flag(name)} must be a finite number, got {value}")


def _check_counts(cfg: TrainConfig) -> None:
    """Counts of steps, images, pixels and processes: at least 1, or at least 0."""
    positive = ("patch_size", "batch_size", "repeat", "max_steps", "gradient_accumulation_steps")
    for name in (*positive, "keep_checkpoints"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{_flag(name)} must be >= 1, got {getattr(cfg, name)}")
    nonnegative = ("checkpointing_steps", "val_every", "save_images", "num_workers")
    for name in (*nonnegative, "threads", "max_minutes"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{_flag(name)} must be >= 0, got {getattr(cfg, name)}")
    if cfg.warmup_steps < 0 or cfg.warmup_steps > cfg.max_steps:
        raise ValueError(
            f"--warmup-steps {cfg.warmup_steps} must be between 0 and --max-steps {cfg.max_steps}"
        )
    if cfg.tile is not None:
        check_tile_overlap(
            cfg.tile, cfg.tile_overlap, tile_name="--tile", overlap_name="--tile-overlap"
        )


_RANGES = {  # name: (low, high, whether low itself is allowed)
    "lr": (0.0, math.inf, False),
    "weight_decay": (0.0, math.inf, True),
    "grad_clip": (0.0, math.inf, True),
    "min_lr_ratio": (0.0, 1.0, True),
    "gamma": (0.0, 1.0, False),
    "perceptual_weight": (0.0, math.inf, True),
}


def _check_ranges(cfg: TrainConfig) -> None:
    """Learning rates, weights and decays within their ranges."""
    for name, (low, high, closed) in _RANGES.items():
        value = getattr(cfg, name)
        if not (low <= value if closed else low < value) or value > high:
            upper = f" and <= {high:g}" if math.isfinite(high) else ""
            bounds = f"{'>=' if closed else '>'} {low:g}{upper}"
            raise ValueError(f"{_flag(name)} must be {bounds}, got {value}")
    if not 0 <= cfg.ema_decay < 1:
        raise ValueError(f"--ema-decay must be in [0, 1) (0 = off), got {cfg.ema_decay}")
    if any(not 0 <= b < 1 for b in cfg.betas):
        raise ValueError(f"--betas {cfg.betas} must both be in [0, 1), e.g. 0.9 0.99")


def __getattr__(name: str) -> Any:
    return renamed(__name__, name, {"validate": check_settings})
