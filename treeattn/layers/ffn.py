"""Feed-forward networks on channels-last maps ``(B, H, W, C)``.

* ``gated_dwconv`` — the Hi-IR "L3" level (default): ``Linear C→2rC``, split into value and gate,
  gate through a depthwise 3×3 conv and GELU, ``value·gate``, ``Linear rC→C`` (``6C² + 25C`` params
  at ``r = 2``). Its 3×3 conv is what bridges neighbouring regions; the conv, the GELU and the
  product run as one operator in CPU training (:func:`~treeattn.ops.gate.dwconv_gated_gelu`).
* ``leff`` — LeFF: ``Linear C→rC`` (1×1), GELU, depthwise 3×3, GELU, ``Linear rC→C``.
* ``mlp`` — plain two-layer MLP (Hi-IR "without L3").

Each FFN states its ``reach`` (receptive-field radius: 1 with the 3×3 conv, 0 without), so large
inference maps can run tile by tile with that halo when a runner asks for it
(:func:`treeattn.ops.bands.apply_with_halo`), with exactly the whole-map result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from treeattn.layers.hooks import runs_hooks
from treeattn.ops.bands import BandWise, MapFn, apply_with_halo, bands_wanted
from treeattn.ops.depthwise import depthwise_conv3x3
from treeattn.ops.gate import dwconv_gated_gelu, dwconv_kernel_case, gated_gelu
from treeattn.validate import check_choice, check_float, check_int

__all__ = ["FFNS", "MLP", "GatedDWConvFFN", "LeFF", "build_ffn", "check_ffn_ratio"]


def check_ffn_ratio(ratio: object) -> float:
    """An FFN hidden ratio: a positive number (every FFN checks it; a model config too, when it
    is created).

    Raises:
        TypeError: if ``ratio`` is not a number.
        ValueError: if it is not positive and finite.
    """
    return check_float("ffn_ratio", ratio, minimum=0.0, open_minimum=True)


def _hidden(dim: int, ratio: float) -> int:
    """Hidden channels of an FFN of width ``dim`` (the checks every FFN class makes)."""
    hidden = round(check_int("dim", dim, minimum=1) * check_ffn_ratio(ratio))
    if hidden < 1:
        raise ValueError(f"ffn_ratio={ratio} gives no hidden channels at {dim=}")
    return hidden


class _DepthwiseConv(nn.Module):
    """Depthwise 3×3 convolution applied to a channels-last map.

    Under ``torch.compile`` it is one opaque operator
    (:func:`~treeattn.ops.depthwise.depthwise_conv3x3`, the same kernels as eager mode), unless
    the convolution has hooks or was replaced by a subclass: then the call is traced as it is.
    Its weight is stored channels-last, the layout in which the convolution of a channels-last map
    returns the weight's gradient: the strides then match, so DDP's gradient buckets take it
    without the "grad strides do not match bucket view strides" copy.
    """

    def __init__(self, channels: int, *, device=None, dtype=None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            channels, channels, 3, padding=1, groups=channels, device=device, dtype=dtype
        ).to(memory_format=torch.channels_last)

    @property
    def _plain(self) -> bool:
        """Whether ``self.conv`` is the plain convolution it was built as: no hooks (its own or
        global), not a swapped-in subclass (quantization, LoRA), whose call the operators would
        skip, and its settings unchanged."""
        conv = self.conv
        return (
            type(conv) is nn.Conv2d
            and not runs_hooks(conv)
            and conv.padding == (1, 1)
            and conv.padding_mode == "zeros"
            and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
        )

    def gated(self, value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """``value · GELU(conv(gate))`` — the L3 gate with this convolution in front: in eager
        CPU training one C++ pass each way (:func:`~treeattn.ops.gate.dwconv_gated_gelu`), else
        this module followed by :func:`~treeattn.ops.gate.gated_gelu`."""
        conv = self.conv
        if (
            self._plain
            and not runs_hooks(self)
            and dwconv_kernel_case(value, gate, conv.weight, conv.bias)
        ):
            return dwconv_gated_gelu(value, gate, conv.weight, conv.bias)
        return gated_gelu(value, self(gate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() and not torch.compiler.is_exporting() and self._plain:
            # one opaque node (exported graphs hold standard operators only)
            return depthwise_conv3x3(x, self.conv.weight, self.conv.bias)
        y = self.conv(rearrange(x, "b h w c -> b c h w"))
        return rearrange(y, "b c h w -> b h w c")


class _LocalFFN(nn.Module, BandWise, ABC):
    """An FFN whose output pixel depends on inputs at most ``reach`` pixels away."""

    reach: int

    @abstractmethod
    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """The FFN on a ``(B, H, W, C)`` map."""

    def in_tiles(self, fn: MapFn, x: torch.Tensor, *, tile_pixels: int) -> torch.Tensor:
        """``fn`` — :meth:`mix`, possibly composed with per-pixel maps — run on tiles of about
        ``tile_pixels`` read with a halo of :attr:`reach`, keeping their interiors: exactly ``fn``
        on the whole map."""
        return apply_with_halo(fn, x, reach=self.reach, tile_pixels=tile_pixels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` → ``(B, H, W, C)`` (tile-wise for large inference maps inside a
        runner's :func:`~treeattn.ops.bands.band_wise` block)."""
        if bands_wanted(self, x.shape[1], x.shape[2]):
            return self.in_tiles(self.mix, x, tile_pixels=self.band_plan.tile_pixels)
        return self.mix(x)


class GatedDWConvFFN(_LocalFFN):
    """Gated depthwise-conv FFN (the default L3 level).

    Args:
        dim: Channels ``C``.
        ratio: Hidden ratio ``r``; value and gate have ``r·C`` channels each.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        ratio: float = 2.0,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        hidden = _hidden(dim, ratio)
        self.fc1 = nn.Linear(dim, 2 * hidden, device=device, dtype=dtype)
        self.dwconv = _DepthwiseConv(hidden, device=device, dtype=dtype)
        self.fc2 = nn.Linear(hidden, dim, device=device, dtype=dtype)

    reach = 1

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        # fc1 as two GEMMs over its weight's halves (same parameters, same values): value and gate
        # come out contiguous, so the channels-last conv reads the gate without a copy and the
        # backward needs no concatenation — about 8 % off the FFN's training step on a CPU.
        weights, biases = self.fc1.weight.chunk(2), self.fc1.bias.chunk(2)
        value, gate = (F.linear(x, w, b) for w, b in zip(weights, biases, strict=True))
        # value·GELU(conv(gate)) in one pass each way when training on the CPU (treeattn.ops.gate)
        return self.fc2(self.dwconv.gated(value, gate))


class LeFF(_LocalFFN):
    """Locally-enhanced FFN: 1×1 → depthwise 3×3 → 1×1 with GELUs.

    Args:
        dim: Channels ``C``.
        ratio: Hidden ratio.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        ratio: float = 2.0,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        hidden = _hidden(dim, ratio)
        self.fc1 = nn.Linear(dim, hidden, device=device, dtype=dtype)
        self.dwconv = _DepthwiseConv(hidden, device=device, dtype=dtype)
        self.fc2 = nn.Linear(hidden, dim, device=device, dtype=dtype)

    reach = 1

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.dwconv(F.gelu(self.fc1(x)))))


class MLP(_LocalFFN):
    """Two-layer MLP with GELU (no spatial mixing).

    Args:
        dim: Channels ``C``.
        ratio: Hidden ratio.
        device: Parameter device.
        dtype: Parameter dtype.
    """

    def __init__(
        self,
        dim: int,
        ratio: float = 2.0,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        hidden = _hidden(dim, ratio)
        self.fc1 = nn.Linear(dim, hidden, device=device, dtype=dtype)
        self.fc2 = nn.Linear(hidden, dim, device=device, dtype=dtype)

    reach = 0

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


FFNS: dict[str, type[nn.Module]] = {"gated_dwconv": GatedDWConvFFN, "leff": LeFF, "mlp": MLP}


def build_ffn(
    name: str,
    dim: int,
    ratio: float = 2.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build an FFN by name (``gated_dwconv`` | ``leff`` | ``mlp``)."""
    check_choice("ffn_type", name, FFNS)
    return FFNS[name](dim, ratio, device=device, dtype=dtype)
