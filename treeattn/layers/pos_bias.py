"""Relative position biases for one attention level: continuous MLP (default), table, none.

Each module is built for a fixed window ``group = (g1, g2)`` and returns a ``(1, heads, T, T)``
additive bias (or ``None``), shared by every window of the level — computed once per call, and
once per band-wise pass however many tiles ask for it (:mod:`treeattn.ops.memo`). Index tables
and coordinates are non-persistent buffers: built once, moved with the module. The table is
gathered by :func:`~treeattn.ops.gather.gather_columns` straight into the bias's ``(heads, T²)``
layout; its gradient is summed in a fixed order on any number of CPU threads.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from treeattn.layers.hooks import runs_hooks
from treeattn.ops.gather import gather_columns
from treeattn.ops.memo import reuse
from treeattn.ops.position import num_offsets, relative_coords_table, relative_position_index
from treeattn.validate import check_choice

__all__ = [
    "POS_BIAS",
    "ContinuousPositionBias",
    "NoPositionBias",
    "TablePositionBias",
    "build_pos_bias",
]


def _register_index(module: nn.Module, group: tuple[int, int], *, device) -> None:
    """The window's offset index (flat), as a non-persistent buffer (built on the CPU — a module
    built on the meta device gets its shape only — then moved)."""
    index = relative_position_index(group, device="cpu").flatten()
    target = torch.get_default_device() if device is None else device
    module.register_buffer("index", index.to(target), persistent=False)
    module.tokens = group[0] * group[1]


def _gather(module: nn.Module, table: torch.Tensor) -> torch.Tensor:
    """``(offsets, heads)`` table → the ``(1, heads, T, T)`` bias of ``module``'s window."""
    return rearrange(gather_columns(table, module.index), "h (q k) -> 1 h q k", q=module.tokens)


class ContinuousPositionBias(nn.Module):
    """Bias from a small MLP over log-spaced relative coordinates (Swin-v2 style).

    ``bias = 16·sigmoid(MLP(coords))`` with ``MLP: 2 → hidden (ReLU) → heads`` (no last bias).

    Args:
        group: Window size in tokens ``(g1, g2)``.
        num_heads: Number of attention heads.
        hidden: Width of the MLP.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        group: tuple[int, int],
        num_heads: int,
        *,
        hidden: int = 512,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.mlp = nn.Sequential(
            nn.Linear(2, hidden, **factory),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_heads, bias=False, **factory),
        )
        self.register_buffer(
            "coords", relative_coords_table(group, device=device, dtype=dtype), persistent=False
        )
        _register_index(self, group, device=device)

    def forward(self) -> torch.Tensor:
        return reuse(self, self._bias)

    def _bias(self) -> torch.Tensor:
        return _gather(self, 16.0 * torch.sigmoid(self._mlp()))  # table (offsets, heads)

    def _mlp(self) -> torch.Tensor:
        """``self.mlp(self.coords)``, its first layer's weight gradient taken as ``coordsᵀ·grad``.

        ``nn.Linear`` would take it as ``gradᵀ·coords``, a product two columns wide that runs
        about 13× slower on the CPU (2 ms a step for a 16×16 window); with the weight passed as a
        contiguous ``(2, hidden)`` operand, autograd forms the product the other way round. A first
        layer that is not a plain ``nn.Linear``, or runs hooks, is called as it is.
        """
        first, activation, last = self.mlp
        if type(first) is not nn.Linear or runs_hooks(first):
            return self.mlp(self.coords)
        hidden = torch.addmm(first.bias, self.coords, first.weight.t().contiguous())
        return last(activation(hidden))


class TablePositionBias(nn.Module):
    """Learned bias per (offset, head), looked up from a table (Swin-v1 style).

    Args:
        group: Window size in tokens ``(g1, g2)``.
        num_heads: Number of attention heads.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        group: tuple[int, int],
        num_heads: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.table = nn.Parameter(
            torch.empty(num_offsets(group), num_heads, device=device, dtype=dtype)
        )
        nn.init.trunc_normal_(self.table, std=0.02)
        _register_index(self, group, device=device)

    def forward(self) -> torch.Tensor:
        return reuse(self, self._bias)

    def _bias(self) -> torch.Tensor:
        return _gather(self, self.table)


class NoPositionBias(nn.Module):
    """No position bias (``forward`` returns ``None``)."""

    def __init__(
        self,
        group: tuple[int, int],
        num_heads: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()

    def forward(self) -> None:
        return None


POS_BIAS: dict[str, type[nn.Module]] = {
    "cpb": ContinuousPositionBias,
    "table": TablePositionBias,
    "none": NoPositionBias,
}


def build_pos_bias(
    name: str,
    group: tuple[int, int],
    num_heads: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build a position-bias module by name (``cpb`` | ``table`` | ``none``)."""
    check_choice("pos_bias", name, POS_BIAS)
    return POS_BIAS[name](group, num_heads, device=device, dtype=dtype)
