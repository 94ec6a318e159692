"""Restoring whole test images (padding, optional tiling) and validation across processes.

:func:`validate` shards a test set over the processes, restores each image once, and gathers the
per-image metrics with :meth:`accelerate.Accelerator.gather_for_metrics`, which drops the
duplicates that even sharding adds — every test image counts exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from treeattn.models.banded import banded_forward
from treeattn.ops.padding import crop_to, pad_to_multiple
from treeattn.ops.tiling import tiled_apply

__all__ = ["Restorer", "make_restorer", "metrics_for", "padded_forward", "validate"]

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


def _pad_for(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pad ``x`` bottom/right to the size ``model.meta`` needs (reflect, else replicate)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = model.meta.padding_for(height, width)
    return pad_to_multiple(x, (height + pad_h, width + pad_w))[0]


def padded_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pad ``x`` (bottom/right) to what ``model.meta`` needs, run the model, crop the result.

    The model runs through :func:`~treeattn.models.banded.banded_forward`: no gradients, and
    large maps band by band with exactly the whole-image result.
    """
    height, width, scale = *x.shape[-2:], model.meta.scale
    return crop_to(banded_forward(model, _pad_for(model, x)), (height * scale, width * scale))


def make_restorer(model: nn.Module, *, tile: int, overlap: int) -> Restorer:
    """A function restoring a batch of whole images with ``model`` (no gradients, band-wise).

    The image is padded once to the model's requirement; with ``tile`` the padded image is then
    processed in overlapping tiles (:func:`treeattn.ops.tiling.tiled_apply`), so tiling changes
    nothing but memory use when the overlap covers the model's receptive field.

    Args:
        model: A model with ``meta`` in eval mode (unwrapped, or the EMA copy).
        tile: Tile size in input pixels; 0 processes whole images.
        overlap: Tile overlap in input pixels.
    """
    scale = model.meta.scale
    tiled = partial(tiled_apply, partial(padded_forward, model), tile=tile, overlap=overlap)

    def restore_tiled(x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        return crop_to(tiled(_pad_for(model, x), scale=scale), (height * scale, width * scale))

    return torch.no_grad()(restore_tiled if tile else partial(padded_forward, model))


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
