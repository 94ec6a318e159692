"""Multiply-accumulate counts of a forward pass, with ``torch.utils.flop_counter``.

``FlopCounterMode`` reports FLOPs = 2 × MACs for matmuls and convolutions; this module divides by
two and labels the result MACs (what the image-restoration literature calls "FLOPs"). Attention is
counted under the math SDPA backend, because the counter sees nothing of the fused CPU kernels.
Only the forward pass is counted (the counter over-counts depthwise-conv *backward* by the group
count; forward is exact). Element-wise ops (softmax, norms, activations) are not counted, as is
usual. A model built on the ``meta`` device is counted without computing anything.

The count follows the model's attention backend: the ``sdpa`` path zero-pads the halved q/k of
tree attention to v's head dim (the fused kernels need one head dim), so ``q·kᵀ`` is counted at
the padded width; build the model with ``backend="math"`` for the algorithm's own count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["MacsReport", "count_macs"]


@dataclass(frozen=True)
class MacsReport:
    """MACs of one forward pass.

    Attributes:
        input_shape: The ``(B, C, H, W)`` input that was counted.
        total: Multiply-accumulates (FLOPs / 2).
        by_operator: MACs per aten operator (``convolution``, ``addmm``, ``bmm``, ...).
        by_module: MACs per top-level child module of the model.
    """

    input_shape: tuple[int, int, int, int]
    total: int
    by_operator: dict[str, int]
    by_module: dict[str, int]


def count_macs(
    model: torch.nn.Module,
    size: tuple[int, int],
    *,
    in_chans: int,
    batch: int = 1,
) -> MacsReport:
    """Count the MACs of ``model`` on a ``(batch, in_chans, H, W)`` input.

    Args:
        model: Any ``(B, C, H, W)`` model, on any device (``meta`` counts without computing).
        size: Input ``(H, W)``.
        in_chans: Input channels.
        batch: Batch size.

    Returns:
        A :class:`MacsReport`.
    """
    height, width = size
    if min(height, width, batch, in_chans) < 1:
        raise ValueError(f"{size=}, {batch=} and {in_chans=} must be positive")
    param = next(model.parameters())
    x = torch.zeros(batch, in_chans, height, width, device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False, depth=2)
    # model(x) runs whole maps (band-wise runs would count the FFN's halo pixels twice).
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), counter:
        model(x)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    by_module = {}
    for name, child in model.named_children():
        # Containers (ModuleList/ModuleDict) run no forward of their own: count their children.
        keys = (
            [f"{name}.{sub}" for sub, _ in child.named_children()]
            if isinstance(child, nn.ModuleList | nn.ModuleDict)
            else [name]
        )
        for key in keys:
            ops = counts.get(f"{root}.{key}")
            if ops:
                by_module[key] = sum(ops.values()) // 2
    by_operator = {
        str(op).removeprefix("aten."): flops // 2 for op, flops in counts.get("Global", {}).items()
    }
    return MacsReport(
        input_shape=(batch, in_chans, height, width),
        total=counter.get_total_flops() // 2,
        by_operator=by_operator,
        by_module=by_module,
    )
