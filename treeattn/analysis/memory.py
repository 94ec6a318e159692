"""Peak activation memory of a forward pass, measured by tracking live tensor storages.

A ``TorchDispatchMode`` sees every tensor an operator returns. Each new storage is counted when it
appears and uncounted when Python frees it (storages keep their Python object alive, so a weak
reference fires exactly when the memory is released). The peak of the live total is the activation
memory: parameters, buffers and the input are excluded; tensors kept for backward are included
when ``grad=True``. The measure is the same on every device and does not depend on allocator
caching. Not seen: scratch memory inside fused kernels (e.g. a flash-attention kernel's blocks),
which never becomes a tensor.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

from treeattn.ops.bands import band_wise

__all__ = ["LiveTensorTracker", "peak_activation_memory"]


class LiveTensorTracker(TorchDispatchMode):
    """Counts the bytes of tensor storages created while active and still alive.

    Args:
        ignore: Tensors whose storages are not counted (parameters, inputs).

    Attributes:
        current: Bytes alive now.
        peak: Largest ``current`` seen.
    """

    def __init__(self, ignore: list[torch.Tensor]) -> None:
        super().__init__()
        self._seen = WeakIdKeyDictionary()
        for tensor in ignore:
            self._seen[tensor.untyped_storage()] = True
        self.current = 0
        self.peak = 0

    def _release(self, nbytes: int) -> None:
        self.current -= nbytes

    def _track(self, tensor: torch.Tensor) -> None:
        if tensor.layout != torch.strided:
            return  # a sparse tensor's memory is its index and value tensors, counted as made
        storage = tensor.untyped_storage()
        if storage in self._seen:
            return
        self._seen[storage] = True
        nbytes = storage.nbytes()
        self.current += nbytes
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._release, nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out


def peak_activation_memory(
    model: torch.nn.Module,
    size: tuple[int, int],
    *,
    in_chans: int,
    batch: int = 1,
    grad: bool = False,
) -> int:
    """Peak bytes of activations alive during one forward pass.

    Args:
        model: Any ``(B, C, H, W)`` model.
        size: Input ``(H, W)``.
        in_chans: Input channels.
        batch: Batch size.
        grad: Run with autograd on (training memory: tensors saved for backward count) instead
            of under ``torch.no_grad()`` (inference: large layer maps band-wise, as
            ``treeattn restore`` runs them; see :func:`treeattn.ops.bands.band_wise`).

    Returns:
        Peak live bytes, excluding parameters, buffers and the input.
    """
    height, width = size
    if min(height, width, batch, in_chans) < 1:
        raise ValueError(f"{size=}, {batch=} and {in_chans=} must be positive")
    param = next(model.parameters())
    x = torch.rand(batch, in_chans, height, width, device=param.device, dtype=param.dtype)
    tracker = LiveTensorTracker([x, *model.parameters(), *model.buffers()])
    with torch.set_grad_enabled(grad), band_wise(model), tracker:
        out = model(x)
    del out
    return tracker.peak
