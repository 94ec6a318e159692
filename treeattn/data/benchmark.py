"""Evaluate a restoration callable under a task's metric protocol: on a folder of clean images
(:func:`evaluate_folder`) or on given degraded/ground-truth pairs (:func:`evaluate_pairs`).

This is the one evaluation path of the project (recipes, docs and tests call it)::

    table = evaluate_folder(model, test_dir(color=False), degradation=AWGN(sigma=25),
                            protocol="denoise", channels=1)
    print(table.to_markdown())

For each image ``i`` (sorted by file name) the ground truth is read (mod-cropped to the protocol's
scale), degraded with a generator seeded by ``seed + i`` (so test noise is the same in every run),
restored, and measured. The table also reports the metrics of the degraded input itself: the
network input as it is fed (noise neither clipped nor rounded), and for super-resolution the
MATLAB-style bicubic up-sampling of the low-resolution input (the field's "Bicubic" row).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from treeattn.data.degradations import Degradation
from treeattn.data.io import list_images, read_image
from treeattn.data.resize import imresize
from treeattn.data.transforms import mod_crop
from treeattn.metrics import mae, psnr, psnr_b, ssim

__all__ = [
    "METRICS",
    "PROTOCOLS",
    "BenchmarkTable",
    "Protocol",
    "evaluate_folder",
    "evaluate_pairs",
    "get_protocol",
]

METRICS: dict[str, Callable[..., Tensor]] = {
    "psnr": psnr,
    "ssim": ssim,
    "psnr_b": psnr_b,
    "mae": mae,
}


@dataclass(frozen=True)
class Protocol:
    """How a task is measured.

    Args:
        name: Protocol name.
        scale: SR factor (ground truth mod-cropped to it; 1 for same-size tasks).
        y_channel: Measure colour images on the BT.601 Y channel.
        crop_border: Pixels removed at each border before measuring.
        round_uint8: Clamp and round the restored output to uint8 levels first.
        metrics: Names from :data:`METRICS`, in table order.
    """

    name: str
    scale: int = 1
    y_channel: bool = False
    crop_border: int = 0
    round_uint8: bool = True
    metrics: tuple[str, ...] = ("psnr", "ssim")

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {tuple(METRICS)}")
        if self.scale < 1 or self.crop_border < 0:
            raise ValueError(f"{self.scale=} must be >= 1 and {self.crop_border=} >= 0")


PROTOCOLS: dict[str, Protocol] = {
    **{
        f"sr_x{s}": Protocol(name=f"sr_x{s}", scale=s, y_channel=True, crop_border=s)
        for s in (2, 3, 4)
    },
    "denoise": Protocol(name="denoise"),
    "jpeg": Protocol(name="jpeg", metrics=("psnr", "ssim", "psnr_b")),
    "demosaic": Protocol(name="demosaic"),
    "deblur": Protocol(name="deblur"),
    "defocus": Protocol(name="defocus", metrics=("psnr", "ssim", "mae")),
    "weather": Protocol(name="weather"),
}


def get_protocol(protocol: str | Protocol) -> Protocol:
    """Return ``protocol`` itself or the entry of :data:`PROTOCOLS` with that name."""
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {tuple(PROTOCOLS)}")
    return PROTOCOLS[protocol]


@dataclass
class BenchmarkTable:
    """Per-image rows and their mean; prints as markdown, serialises to JSON.

    Each row maps ``"name"`` to the image stem and every metric (and ``"input_<metric>"`` for the
    degraded input) to a float.
    """

    protocol: Protocol
    columns: list[str]
    rows: list[dict[str, float | str]] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        """Column means over the images."""
        return {c: sum(float(r[c]) for r in self.rows) / len(self.rows) for c in self.columns}

    def to_dict(self) -> dict:
        """Plain-Python form: protocol, columns, rows and mean."""
        return {
            "protocol": asdict(self.protocol),
            "columns": self.columns,
            "rows": self.rows,
            "mean": self.mean,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of :meth:`to_dict` (infinite PSNR is written as ``Infinity``); also written
        to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_markdown(self, *, digits: int = 4) -> str:
        """A markdown table: one row per image and a final mean row."""

        def fmt(value: float) -> str:
            return str(value) if math.isinf(value) else f"{value:.{digits}f}"

        lines = [
            "| image | " + " | ".join(self.columns) + " |",
            "|---|" + "---|" * len(self.columns),
        ]
        for row in self.rows:
            lines.append(
                f"| {row['name']} | " + " | ".join(fmt(row[c]) for c in self.columns) + " |"
            )
        mean = self.mean
        lines.append("| **mean** | " + " | ".join(fmt(mean[c]) for c in self.columns) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


def _measure(pred: Tensor, gt: Tensor, protocol: Protocol, *, round_uint8: bool) -> dict:
    options = {
        "crop_border": protocol.crop_border,
        "y_channel": protocol.y_channel and gt.shape[0] == 3,
        "round_uint8": round_uint8,
    }
    return {m: float(METRICS[m](pred, gt, **options)) for m in protocol.metrics}


def evaluate_pairs(
    restore: Callable[[Tensor], Tensor],
    pairs: Iterable[tuple[str, Tensor, Tensor]],
    *,
    protocol: str | Protocol,
    device: torch.device | str | None = None,
) -> BenchmarkTable:
    """Restore and measure ``(name, lq, gt)`` triples under ``protocol``.

    The ``input_<metric>`` columns measure the degraded input itself, as fed (not rounded): its
    first ``C`` channels for stacked multi-view inputs (dual-pixel), and for super-resolution its
    MATLAB-style bicubic up-sampling (the field's "Bicubic" row).

    Args:
        restore: Maps a ``(1, C, h, w)`` degraded batch to the ``(1, C, H, W)`` restoration
            (called under ``torch.no_grad``); e.g. a model, or ``lambda x: x`` for the identity.
        pairs: ``(name, lq, gt)`` with ``(C, h, w)`` tensors.
        protocol: A :class:`Protocol` or a name in :data:`PROTOCOLS`.
        device: Where the degraded input is placed before ``restore`` (default: CPU).

    Returns:
        The per-image table with metric columns followed by ``input_<metric>`` columns.

    Raises:
        TypeError: if ``restore`` returns anything but a tensor.
        ValueError: if it returns a tensor of the wrong shape.
    """
    protocol = get_protocol(protocol)
    columns = [*protocol.metrics, *(f"input_{m}" for m in protocol.metrics)]
    table = BenchmarkTable(protocol=protocol, columns=columns)
    for name, lq, gt in pairs:
        with torch.no_grad():
            out = restore(lq.unsqueeze(0).to(device))
        if not isinstance(out, Tensor):
            raise TypeError(
                f"restore returned a {type(out).__name__} for {name}; it must return one "
                f"torch.Tensor of shape {(1, *gt.shape)} (the restored batch)"
            )
        out = out.detach().float().cpu()
        if out.shape != (1, *gt.shape):
            raise ValueError(
                f"restore returned {tuple(out.shape)} for {name}; expected {(1, *gt.shape)}"
            )
        baseline = lq[: gt.shape[0]]
        if protocol.scale > 1:
            baseline = imresize(baseline, size=tuple(gt.shape[-2:]), uint8_levels=True)
        if baseline.shape != gt.shape:
            raise ValueError(
                f"degraded input {tuple(lq.shape)} of {name} does not match its ground truth "
                f"{tuple(gt.shape)} under protocol {protocol.name!r} (scale={protocol.scale})"
            )
        row: dict[str, float | str] = {"name": name}
        row.update(_measure(out[0], gt, protocol, round_uint8=protocol.round_uint8))
        measured = _measure(baseline, gt, protocol, round_uint8=False)
        row.update({f"input_{m}": v for m, v in measured.items()})
        table.rows.append(row)
    return table


def evaluate_folder(
    restore: Callable[[Tensor], Tensor],
    folder: str | Path,
    *,
    degradation: Degradation,
    protocol: str | Protocol,
    seed: int = 0,
    channels: int | None = None,
    gray_method: str = "luma",
    device: torch.device | str | None = None,
) -> BenchmarkTable:
    """Degrade every image of ``folder``, restore it and measure it under ``protocol``.

    Args:
        restore: Maps a ``(1, C, h, w)`` degraded batch to the ``(1, C, H, W)`` restoration
            (called under ``torch.no_grad``); e.g. a model, or ``lambda x: x`` for the identity.
        folder: Folder of clean ground-truth images.
        degradation: Callable ``(gt, generator) -> lq``; image ``i`` gets a generator seeded by
            ``seed + i``.
        protocol: A :class:`Protocol` or a name in :data:`PROTOCOLS`.
        seed: Base seed of the test degradations.
        channels: ``None`` keeps each file's channels, 1 or 3 converts.
        gray_method: Colour-to-gray convention, see :mod:`treeattn.data.io`.
        device: Where the degraded input is placed before ``restore`` (default: CPU).

    Returns:
        The per-image table (see :func:`evaluate_pairs`).
    """
    protocol = get_protocol(protocol)

    def pairs() -> Iterator[tuple[str, Tensor, Tensor]]:
        for index, path in enumerate(list_images(folder)):
            gt = read_image(path, channels=channels, gray_method=gray_method)
            gt = mod_crop(gt, protocol.scale)
            yield path.stem, degradation(gt, torch.Generator().manual_seed(seed + index)), gt

    return evaluate_pairs(restore, pairs(), protocol=protocol, device=device)
