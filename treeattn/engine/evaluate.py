"""Validation: test images restored as ``treeattn restore`` restores them, scored across processes.

:func:`make_restorer` is the engine's side of the one restore path
(:class:`treeattn.inference.runner.Runner`): padding to the model's needs, whole images (large
layer maps band by band) or tiles, cropping back — so a model scores in validation exactly what
``treeattn restore`` then writes for the same image and settings. :func:`validate` shards a test
set over the processes, restores each image once, and gathers the per-image metrics with
:meth:`accelerate.Accelerator.gather_for_metrics`, which drops the duplicates that even sharding
adds — every test image counts exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from treeattn.deprecation import moved
from treeattn.inference import runner as _runner
from treeattn.inference.runner import Runner

_MOVED = {"padded_forward": _runner}  # deprecated here: import it from treeattn.inference.runner
__all__ = ["Restorer", "make_restorer", "metrics_for", "validate", *_MOVED]

Restorer = Callable[[torch.Tensor], torch.Tensor]


def metrics_for(
    protocol: Any, *, round_uint8: bool | None = None
) -> Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-image metrics ``(restored, gt) -> {name: (B,)}`` under a benchmark protocol.

    Args:
        protocol: A :class:`treeattn.data.benchmark.Protocol` or its name.
        round_uint8: Override the protocol's rounding (``False`` scores a degraded input as fed).
    """
    from treeattn.data.benchmark import METRICS, get_protocol

    protocol = get_protocol(protocol)
    rounding = protocol.round_uint8 if round_uint8 is None else round_uint8

    def measure(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        options = {
            "crop_border": protocol.crop_border,
            "y_channel": protocol.y_channel and gt.shape[1] == 3,
            "round_uint8": rounding,
        }
        return {m: torch.atleast_1d(METRICS[m](pred, gt, **options)) for m in protocol.metrics}

    return measure


def make_restorer(model: nn.Module, *, tile: int | None = None, overlap: int = 32) -> Restorer:
    """The function restoring a batch of whole test images with ``model``: the restore runner.

    The same :class:`~treeattn.inference.runner.Runner` as :func:`treeattn.restore_image` with
    these settings (no gradients, padded once to the model's needs, large layer maps band by
    band; with ``tile`` the padded image in overlapping tiles). The settings were checked where
    they entered (:func:`treeattn.engine.settings.check_settings`).

    Args:
        model: A model with ``meta`` in eval mode (unwrapped, or the EMA copy).
        tile: Tile size in input pixels; ``None`` (or ``0``, as older callers pass) processes
            whole images.
        overlap: Tile overlap in input pixels.
    """
    return Runner(model, tile=tile or None, overlap=overlap)


def validate(
    accelerator: Accelerator,
    restore: Restorer,
    loader: DataLoader,
    *,
    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
    sample_dir: Path | None = None,
    max_samples: int = 0,
    desc: str | None = None,
) -> dict[str, float]:
    """Mean metrics of one prepared (sharded) test loader, each image counted once.

    Args:
        accelerator: The run's accelerator.
        restore: Batch restorer from :func:`make_restorer`.
        loader: Prepared loader of whole images, batch size 1.
        metrics: ``(restored, gt) -> {name: (B,) tensor}``.
        sample_dir: Where to save restored samples (PNG), or ``None``.
        max_samples: How many samples to save in all (split over the processes).
        desc: Label of a progress bar (local main process; removed when done), or ``None``.

    Returns:
        ``{name: mean}`` plus ``"images"``: how many images were scored.
    """
    from treeattn.data.io import write_image

    per_process = -(-max_samples // accelerator.num_processes)
    rows: list[dict[str, torch.Tensor]] = []
    bar = tqdm(
        loader,
        desc=desc,
        leave=False,
        disable=desc is None or not accelerator.is_local_main_process,
    )
    for index, batch in enumerate(bar):
        with accelerator.autocast():
            out = restore(batch["lq"]).float()
        values = metrics(out, batch["gt"].float())
        rows.append(accelerator.gather_for_metrics(values))
        if sample_dir is not None and index < per_process:
            sample_dir.mkdir(parents=True, exist_ok=True)
            for name, image in zip(batch["name"], out, strict=True):
                write_image(sample_dir / f"{Path(name).stem}.png", image.cpu())
    merged = {k: torch.cat([r[k] for r in rows]) for k in rows[0]} if rows else {}
    count = next(iter(merged.values())).numel() if merged else 0
    return {**{k: float(v.double().mean()) for k, v in merged.items()}, "images": count}


def __getattr__(name: str) -> Any:
    return moved(__name__, name, _MOVED)
