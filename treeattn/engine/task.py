"""What a recipe fills in: :class:`TaskSpec` (data, degradation, model, loss, protocol, presets)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["SMOKE", "LevelSpec", "TaskSpec", "paper_preset"]

#: ``--smoke``: a seconds-long run on tiny settings, for CI.
SMOKE: Mapping[str, Any] = MappingProxyType(
    {
        "max_steps": 2,
        "max_minutes": 0,
        "batch_size": 2,
        "patch_size": 32,
        "warmup_steps": 0,
        "val_every": 0,
    }
)


def paper_preset(
    *,
    model: str,
    patch_size: int,
    batch_size: int,
    max_steps: int,
    lr: float = 3e-4,
    weight_decay: float = 1e-4,
    tile: int | None = 256,
) -> dict[str, Any]:
    """The paper-scale (GPU) settings recipes share: 50k linear warm-up, then cosine to 1e-6.

    Args:
        model: Registry name of the full-size model.
        patch_size: Training patch side (low-quality side for SR).
        batch_size: Batch per process.
        max_steps: Training iterations.
        lr: Peak learning rate.
        weight_decay: Optimiser weight decay.
        tile: Validation tile side for large test images (``None``: whole images).
    """
    preset = {
        "max_minutes": 0,
        "model": model,
        "patch_size": patch_size,
        "batch_size": batch_size,
        "max_steps": max_steps,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup_steps": 50_000,
        "min_lr_ratio": 1e-6 / lr,
        "checkpointing_steps": 5000,
        "val_every": 5000,
    }
    return preset if tile is None else {**preset, "tile": tile}


@dataclass(frozen=True)
class LevelSpec:
    """A task's degradation level flag (noise σ, JPEG quality, ...).

    Attributes:
        flag: Flag name without dashes, e.g. ``"sigma"`` gives ``--sigma 25`` or, for blind
            training, ``--sigma 0 50``.
        help: Help text of the flag.
        param: Keyword of ``build_degradation`` that receives the level (a number or a
            ``(low, high)`` range).
        low: Smallest valid level.
        high: Largest valid level.
        integer: Whether levels must be whole numbers (JPEG quality).
    """

    flag: str
    help: str
    param: str
    low: float = 0.0
    high: float = math.inf
    integer: bool = False

    def check(self, levels: Sequence[float], *, flag: str) -> None:
        """Refuse levels outside ``[low, high]``, NaN, or fractions where whole numbers are due.

        Args:
            levels: The given level values.
            flag: The flag they came from, for the message (``--quality``, ``--test-sigma``).

        Raises:
            ValueError: Naming the flag and the valid values.
        """
        for value in levels:
            whole = not self.integer or float(value).is_integer()
            if not (self.low <= value <= self.high and whole):  # also False for NaN
                kind = "a whole number" if self.integer else "a number"
                bounds = (
                    f"between {self.low:g} and {self.high:g}"
                    if math.isfinite(self.high)
                    else f">= {self.low:g}"
                )
                raise ValueError(f"{flag} {value:g} is not valid: give {kind} {bounds}")

    def degradation_kwargs(self, levels: Sequence[float]) -> dict[str, Any]:
        """The keyword arguments of ``build_degradation`` that set ``levels``.

        Args:
            levels: One value (``{param: value}``), a blind ``LOW HIGH`` range
                (``{param_range: (low, high)}``), or none (``{}``: the degradation's default).
        """
        if not levels:
            return {}
        if len(levels) == 1:
            return {self.param: levels[0]}
        return {f"{self.param}_range": (levels[0], levels[1])}


@dataclass(frozen=True)
class TaskSpec:
    """Everything a recipe states about its task; the engine does the rest.

    Attributes:
        name: Task name (``denoise``, ``sr``, ...); also the recipe file name.
        description: One paragraph for ``--help``.
        data: How training/test pairs are made, a key of
            :data:`treeattn.engine.data.DATA_KINDS`: ``"degraded"`` (clean folder + on-the-fly
            degradation) or ``"paired"`` (degraded and ground-truth folders).
        embedded: Which embedded image family the quick default uses (``treeattn.data.embedded``).
        degradation: ``build_degradation`` name for ``"degraded"`` tasks.
        degradation_params: Fixed keyword arguments of the degradation.
        level: The level flag, if the task has levels.
        gray_method: How colour files become gray when ``--channels 1``: ``"luma"`` or ``"y"``
            (see :mod:`treeattn.data.io`; gray JPEG uses the MATLAB Y channel).
        dual_pixel: Whether the task offers ``--dual-pixel`` (two input views).
        dual_pixel_overrides: Model settings implied by ``--dual-pixel`` (e.g. how the global
            residual treats the stacked views).
        synthetic: For paired tasks: the kind of synthetic pairs generated from the embedded
            images when no folders are given (see :data:`treeattn.engine.synthetic.SYNTHETIC`).
        protocol: Evaluation protocol of ``evaluate_folder``: a name in
            :data:`treeattn.data.benchmark.PROTOCOLS` (``"sr_x{scale}"`` is formatted with the
            model's scale) or a :class:`treeattn.data.benchmark.Protocol`.
        defaults: Where the task's quick default run differs from the defaults of
            :class:`TrainConfig` (its keys); the output folder defaults to ``outputs/<name>``.
        presets: Named settings, e.g. ``{"paper": paper_preset(...)}``.
        smoke: Settings applied by ``--smoke`` (a seconds-long run for CI).
        scales: The model scales (output / input size) the task trains: ``(1,)`` for
            same-size restoration, e.g. ``(2, 3, 4)`` for super-resolution.
    """

    name: str
    description: str
    data: str
    protocol: Any
    embedded: str
    degradation: str | None = None
    degradation_params: Mapping[str, Any] = field(default_factory=dict)
    level: LevelSpec | None = None
    gray_method: str = "luma"
    dual_pixel: bool = False
    dual_pixel_overrides: Mapping[str, Any] = field(default_factory=dict)
    synthetic: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    smoke: Mapping[str, Any] = field(default_factory=lambda: SMOKE)
    scales: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if "output_dir" not in self.defaults:
            defaults = {**self.defaults, "output_dir": f"outputs/{self.name}"}
            object.__setattr__(self, "defaults", MappingProxyType(defaults))

    def protocol_for(self, scale: int) -> Any:
        """The evaluation protocol: a name (``{scale}`` is filled in) or a ``Protocol``."""
        return (
            self.protocol.format(scale=scale) if isinstance(self.protocol, str) else self.protocol
        )

    def offers(self, setting: str) -> bool:
        """Whether this task has the optional setting ``level``/``test_level``/``dual_pixel``."""
        has_level = self.level is not None
        return {"level": has_level, "test_level": has_level, "dual_pixel": self.dual_pixel}[setting]
