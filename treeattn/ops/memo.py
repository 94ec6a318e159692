"""Input-independent values computed once per band-wise pass instead of once per tile.

A position-bias table depends on parameters only, yet a band-wise layer asks for it once per
tile. Inside :func:`pass_cache` — opened by band-wise execution around its tiles
(:mod:`treeattn.ops.bands`) — :func:`reuse` computes such a value once per owner and returns the
same tensor to later calls. The store is dropped when the block ends, so no value outlives the
pass that computed it: parameters changed between passes (``load_state_dict``, an optimizer
step, an in-place edit, ``.to()``, ``train()``/``eval()``) are always seen, with no version
bookkeeping. Nothing is stored while autograd records (gradients must flow through every use) or
under ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import torch

__all__ = ["pass_cache", "reuse"]

T = TypeVar("T")

# id(owner) → value, for the innermost open pass_cache block; None outside any.
_STORE: ContextVar[dict[int, object] | None] = ContextVar("treeattn_pass_cache", default=None)


@contextmanager
def pass_cache() -> Iterator[None]:
    """Keep :func:`reuse` values until the block ends (a nested block shares the outer store).

    The owners passed to :func:`reuse` inside must not change their parameters inside the block.
    """
    if _STORE.get() is not None:
        yield
        return
    token = _STORE.set({})
    try:
        yield
    finally:
        _STORE.reset(token)


def reuse(owner: object, compute: Callable[[], T]) -> T:
    """``compute()``, or the value it gave ``owner`` earlier in the open :func:`pass_cache` block.

    Computes afresh outside a block, while autograd records, and under ``torch.compile``.

    Args:
        owner: The object the value belongs to (e.g. a position-bias module), alive for the block.
        compute: Computes the value from ``owner``'s state alone (no input).

    Returns:
        The value.
    """
    # The compiler check comes first: nothing else here is traced (no graph break).
    if torch.compiler.is_compiling() or torch.is_grad_enabled():
        return compute()
    store = _STORE.get()
    if store is None:
        return compute()
    key = id(owner)
    if key not in store:
        store[key] = compute()
    return store[key]  # type: ignore[return-value]
