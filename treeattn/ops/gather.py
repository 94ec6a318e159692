"""Rows of a small table gathered by a large fixed index, with a fast, fixed-order backward.

``table[index]``'s backward sums the gradients of rows gathered more than once (``index_put`` with
``accumulate=True``): for the position-bias table of a 16×16 window, 65,536 gradient rows into
961, on one thread, or on several in an order that changes from call to call when the gradient is
contiguous. :func:`gather_rows` gathers the same rows; its backward is one product with the index
as a sparse one-hot matrix (CSR, :func:`scatter_plan`, built once): each table row's gradient is
summed in index order — bit-identical to the one-thread ``index_put`` on any number of threads and
any layout, and faster on several threads (a 16×16 window's continuous position bias, forward +
backward: 4.8 → 4.7 ms on one thread, 4.1 → 3.2 ms on two; ``benchmarks/ab_gather.py``).
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["gather_rows", "scatter_plan"]

# dtypes whose sparse × dense product PyTorch's CPU build runs.
_PLAN_DTYPES = (torch.float32, torch.float64)


def scatter_plan(index: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSR structure of the ``(rows, len(index))`` one-hot matrix of a flat index.

    Args:
        index: Long tensor ``(N,)`` of values in ``[0, rows)``.
        rows: Rows of the table it indexes.

    Returns:
        ``crow_indices`` ``(rows + 1,)`` and ``col_indices`` ``(N,)``: for each table row, the
        positions in ``index`` that name it, in increasing order.
    """
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=rows)
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return crow, order


class _GatherRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table, index, crow, col):
        ctx.save_for_backward(crow, col)
        ctx.rows = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx, grad):
        crow, col = ctx.saved_tensors
        grad = grad.contiguous()
        with warnings.catch_warnings():  # ("sparse CSR support is in beta state")
            warnings.simplefilter("ignore", UserWarning)
            one_hot = torch.sparse_csr_tensor(
                crow,
                col,
                grad.new_ones(col.numel()),
                size=(ctx.rows, col.numel()),
                check_invariants=False,
            )
            return one_hot @ grad, None, None, None


def gather_rows(
    table: torch.Tensor, index: torch.Tensor, plan: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """``table[index]`` for a 2-D ``table``, whose gradient is summed deterministically.

    Args:
        table: ``(rows, C)``.
        index: Long tensor ``(N,)``.
        plan: :func:`scatter_plan` of ``index`` (on ``table``'s device).

    Returns:
        ``(N, C)``. Where autograd records on the CPU in float32/float64 (eager), the backward
        runs the sparse product; elsewhere — GPUs, other dtypes, ``torch.compile`` — it is plain
        ``table[index]``.
    """
    if (
        torch.is_grad_enabled()
        and table.requires_grad
        and table.device.type == "cpu"
        and table.dtype in _PLAN_DTYPES
        and not torch.compiler.is_compiling()
    ):
        return _GatherRows.apply(table, index, *plan)
    return table[index]
