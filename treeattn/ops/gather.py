"""Rows of a small table gathered by a large fixed index, with a fast, fixed-order backward.

``table[index]``'s backward sums the gradients of rows gathered more than once (``index_put`` with
``accumulate=True``): for the position-bias table of a 16×16 window, 65,536 gradient rows into
961, on one thread, or on several in an order that changes from call to call when the gradient is
contiguous. :func:`gather_rows` gathers the same rows; its backward is one product with the index
as a sparse one-hot matrix (CSR, :func:`scatter_plan`, built once): each table row's gradient is
summed in index order — on this build (MKL's sparse product; tested) bit-identical to the
one-thread ``index_put`` on any number of threads and any layout, and faster on several threads
(a 16×16 window's continuous position bias, forward + backward: 4.8 → 4.7 ms on one thread,
4.1 → 3.2 ms on two; ``benchmarks/ab_gather.py``).
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["gather_rows", "scatter_plan"]

# PyTorch warns that sparse CSR support is in beta whenever one is built; the one built here is
# internal to the backward, so only that warning is silenced around it.
_BETA_WARNING = r"Sparse CSR tensor support is in beta"

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
        ctx.save_for_backward(index, crow, col)
        ctx.rows = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx, grad):
        index, crow, col = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the differentiable index_put
            grad_table = grad.new_zeros((ctx.rows, grad.shape[1]))
            return grad_table.index_put((index,), grad, accumulate=True), None, None, None
        with torch.autocast("cpu", enabled=False), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_BETA_WARNING, category=UserWarning)
            one_hot = torch.sparse_csr_tensor(
                crow,
                col,
                grad.new_ones(col.numel()),
                size=(ctx.rows, col.numel()),
                check_invariants=False,
            )
            return one_hot @ grad.contiguous(), None, None, None


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
    crow, col = plan
    if table.dim() != 2 or crow.numel() != table.shape[0] + 1 or col.numel() != index.numel():
        raise ValueError(
            f"gather_rows takes a 2-D table and the scatter_plan of its index: got table "
            f"{tuple(table.shape)}, index {tuple(index.shape)}, plan of {crow.numel() - 1} rows "
            f"and {col.numel()} positions; build the plan with scatter_plan(index, "
            f"table.shape[0])"
        )
    if (
        torch.is_grad_enabled()
        and table.requires_grad
        and table.device.type == "cpu"
        and table.dtype in _PLAN_DTYPES
        and not torch.compiler.is_compiling()
    ):
        return _GatherRows.apply(table, index, *plan)
    return table[index]
