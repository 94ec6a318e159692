"""How a model was trained: task, degradation and level(s), channels and data (``TrainingRecord``),
and the weights it started from (``InitRecord``, with that model's own record: a chain).

:func:`treeattn.models.save_pretrained` stores the record of a model (``model.provenance``) in
``config.json`` under ``"training"``; :func:`treeattn.models.from_pretrained` reads it back
(checkpoints without one load with ``provenance = None``); ``treeattn info DIR`` prints it. The
recipes fill it in when they save their final model.

Example:
    >>> record = TrainingRecord(task="denoise", degradation="awgn", level_name="sigma",
    ...                         level=(0.0, 50.0), in_chans=1, out_chans=1)
    >>> record.level_text()
    'sigma 0–50 (blind)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["INIT_KINDS", "InitRecord", "TrainingRecord"]

#: What ``--init-from`` named: a shipped model, a ``save_pretrained`` folder, a run folder
#: (its ``model/``) or a run's ``step_N`` checkpoint.
INIT_KINDS = ("shipped", "folder", "run", "checkpoint")


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class InitRecord:
    """The weights a model's training started from (``--init-from``), as saved in its record.

    Attributes:
        source: What the user named: a shipped model's name or a folder.
        kind: One of :data:`INIT_KINDS`.
        model: The source model's name (its registry name or saved name).
        weights_sha256: SHA-256 of the source's weights file.
        training: The source's own training record (``None`` when it has none, e.g. a
            checkpoint of an unfinished run).
    """

    source: str
    kind: str
    model: str
    weights_sha256: str | None = None
    training: TrainingRecord | None = None

    def __post_init__(self) -> None:
        if not self.source or not isinstance(self.source, str):
            raise ValueError(f"source={self.source!r} must be a non-empty string")
        if self.kind not in INIT_KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {INIT_KINDS}")
        if self.training is not None and not isinstance(self.training, TrainingRecord):
            raise ValueError(f"training={self.training!r} must be a TrainingRecord or None")

    def describe(self) -> str:
        """One line: ``hiir_dn_gray_cpu (shipped model hiir_unet_tiny_dn_gray)``."""
        what = {
            "shipped": "shipped model",
            "folder": "saved model",
            "run": "run folder, model",
            "checkpoint": "checkpoint, model",
        }[self.kind]
        return f"{self.source} ({what} {self.model})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (the source's record nested)."""
        values = dataclasses.asdict(self)
        values["training"] = None if self.training is None else self.training.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> InitRecord:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: if ``values`` is not a mapping, has unknown or missing keys, or a value
                (the nested record included) is invalid.
        """
        values = _entries(cls, values, noun="init_from record")
        if values.get("training") is not None:
            values["training"] = TrainingRecord.from_dict(values["training"])
        return _build(cls, values, noun="init_from record")


@dataclass(frozen=True)
class TrainingRecord:
    """What a model was trained for, as saved next to its weights.

    Attributes:
        task: The task of the recipe (``denoise``, ``jpeg``, ``sr``, ``demosaic``, ...).
        in_chans: Input channels the model was trained with.
        out_chans: Output channels.
        degradation: Name of the training degradation (``awgn``, ``jpeg``, ``bicubic``,
            ``bayer``; ``None`` for paired data such as deblurring).
        level_name: What the level measures (``sigma``, ``quality``), if the task has levels.
        level: One value (e.g. ``(25.0,)``: σ 25) or a blind range ``(low, high)``; ``()`` when
            the task has no level.
        params: The degradation's fixed settings, e.g. ``{"pattern": "RGGB"}``.
        scale: Super-resolution factor (1 otherwise).
        views: Input views stacked along the channels (2: dual-pixel left and right).
        gray_method: How colour images were made gray for one-channel training (``luma``, ``y``).
        data: Description of the training data (folders, or the embedded images used).
        steps: Optimizer steps trained (by this run; the source's are in its own record).
        init_from: The weights training started from (``None``: random initialisation).
    """

    task: str
    in_chans: int
    out_chans: int
    degradation: str | None = None
    level_name: str | None = None
    level: tuple[float, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    scale: int = 1
    views: int = 1
    gray_method: str = "luma"
    data: str = ""
    steps: int = 0
    init_from: InitRecord | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", tuple(float(v) for v in self.level))
        object.__setattr__(self, "params", dict(self.params))
        if not self.task or not isinstance(self.task, str):
            raise ValueError(f"task={self.task!r} must be a non-empty string, e.g. 'denoise'")
        if len(self.level) > 2 or (len(self.level) == 2 and self.level[0] > self.level[1]):
            raise ValueError(
                f"level={self.level} must be () or (value,) or (low, high), low ≤ high"
            )
        if self.level and not self.level_name:
            raise ValueError(f"level={self.level} needs a level_name, e.g. 'sigma' or 'quality'")
        for name in ("in_chans", "out_chans", "scale", "views"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if self.init_from is not None and not isinstance(self.init_from, InitRecord):
            raise ValueError(f"init_from={self.init_from!r} must be an InitRecord or None")

    def level_text(self) -> str:
        """The level in words: ``sigma 25``, ``sigma 0–50 (blind)`` or ``""`` without a level."""
        if not self.level:
            return ""
        if len(self.level) == 1:
            return f"{self.level_name} {_number(self.level[0])}"
        low, high = self.level
        return f"{self.level_name} {_number(low)}–{_number(high)} (blind)"

    def rows(self) -> list[tuple[str, str]]:
        """``(label, text)`` rows describing the record, as ``treeattn info`` prints them.

        A model initialised from another one ends with ``initialised from`` and that model's
        rows, indented: the whole chain.
        """
        degradation = ", ".join(
            part
            for part in (
                self.degradation or "paired data",
                self.level_text(),
                *(f"{key} {value}" for key, value in self.params.items()),
                f"scale ×{self.scale}" if self.scale != 1 else "",
            )
            if part
        )
        rows = [
            ("trained for", self.task),
            ("degradation", degradation),
        ]
        if self.views > 1:
            rows.append(("views", f"{self.views} stacked (dual-pixel left, right)"))
        if self.in_chans == 1 or self.out_chans == 1:
            rows.append(("gray conversion", self.gray_method))
        rows += [("trained on", self.data or "not recorded"), ("steps", f"{self.steps:,}")]
        if self.init_from is not None:
            rows.append(("initialised from", self.init_from.describe()))
            parent = self.init_from.training
            parent_rows = parent.rows() if parent is not None else [("trained for", "not recorded")]
            rows += [(f"  {label}", text) for label, text in parent_rows]
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (``level`` as a list; ``init_from`` only when set)."""
        values = dataclasses.asdict(self)
        values["level"] = list(self.level)
        if self.init_from is None:  # left out: records of fresh runs read as before
            del values["init_from"]
        else:
            values["init_from"] = self.init_from.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingRecord:
        """Rebuild a record from :meth:`to_dict` output.

        Raises:
            ValueError: if ``values`` is not a mapping, has unknown or missing keys, or a value
                is invalid.
        """
        values = _entries(cls, values, noun="training record")
        if values.get("init_from") is not None:
            values["init_from"] = InitRecord.from_dict(values["init_from"])
        return _build(cls, values, noun="training record")


def _entries(cls: type, values: Any, *, noun: str) -> dict[str, Any]:
    """``values`` as a dict, refusing a non-mapping or keys that are not fields of ``cls``."""
    if not isinstance(values, Mapping):
        raise ValueError(f"a {noun} must be an object, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {noun} entries {unknown}; valid: {sorted(names)}")
    return dict(values)


def _build(cls: type, values: dict[str, Any], *, noun: str) -> Any:
    """``cls(**values)``, a missing entry raised as ``ValueError``."""
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"incomplete {noun}: {error}") from error
