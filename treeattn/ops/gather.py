"""A position-bias table gathered by its window's offset index, straight into the bias's layout.

A window of ``T`` tokens has ``T²`` (query, key) pairs and far fewer distinct offsets (961 for
16×16): the bias is the ``(offsets, heads)`` table gathered by a fixed flat index of the pairs.
``table[index]`` gives ``(T², heads)``, which the attention then copies into its ``(heads, T²)``
layout, and whose backward (``index_put`` with accumulation) sums the gradient into the table in
an order that can change from call to call on several threads. :func:`gather_columns` selects
columns of the transposed table instead: the ``(heads, T²)`` result is contiguous as made, and the
backward (``index_add`` along the pairs) sums each table entry's gradient over the pairs in index
order on any number of threads — bit-identical to the one-thread ``index_put`` (tested). What it
saves in a whole position bias, forward and backward: ``benchmarks/ab_gather.py``.
"""

from __future__ import annotations

import torch

__all__ = ["gather_columns"]


def gather_columns(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` transposed, as a contiguous ``(C, N)`` tensor.

    Args:
        table: ``(rows, C)``.
        index: Long tensor ``(N,)`` of values in ``[0, rows)``.

    Returns:
        ``(C, N)``, contiguous. Differentiable in ``table`` (to any order); the gradient is
        summed in index order.

    Raises:
        ValueError: for a table that is not 2-D or an index that is not 1-D.
    """
    if table.dim() != 2 or index.dim() != 1:
        raise ValueError(
            f"gather_columns takes a 2-D (rows, C) table and a 1-D index: got table "
            f"{tuple(table.shape)}, index {tuple(index.shape)}"
        )
    return torch.index_select(table.t().contiguous(), 1, index)
