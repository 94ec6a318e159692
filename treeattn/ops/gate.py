"""``value · GELU(gate)`` — the gate of Hi-IR's L3 feed-forward — one pass each way in training.

:func:`dwconv_gated_gelu` is the same gate with the feed-forward's depthwise 3×3 convolution in
front (``value · GELU(conv(gate))``), in one pass each way as well (see below).

PyTorch computes the gate as separate passes over maps that do not fit in the cache (the GELU, the
product; in the backward two products and the GELU's gradient), each writing a fresh map. When
autograd records on the CPU in float32/float64, :func:`gated_gelu` runs
``treeattn::gated_gelu`` instead: treeattn's C++ kernel (:mod:`treeattn.ops.cpu_kernel`), which
reads and writes each element once per direction and keeps only ``value`` and ``gate`` for the
backward. Everywhere else — inference (whose outputs stay PyTorch's to the bit), bf16, GPUs,
``torch.compile`` (the compiler fuses the product itself), exported graphs, or no kernel on this
machine — it is ``value * F.gelu(gate)``.

The kernel's float32 GELU uses the erf approximation of PyTorch's vectorised CPU code (error below
1.5e-7), so it matches PyTorch to float32 rounding; float64 is exact to rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

import treeattn.ops.depthwise  # noqa: F401  (registers treeattn::depthwise_conv3x3, used below)
from treeattn.ops.cpu_kernel import kernel_available, load_cpu_kernel, under_functorch

__all__ = [
    "dwconv_gated_gelu",
    "dwconv_gated_gelu_math",
    "dwconv_kernel_case",
    "gated_gelu",
    "gated_gelu_math",
]


def gated_gelu_math(value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``value * GELU(gate)`` in PyTorch operators (the reference).

    Without autograd the product is written into the GELU's output when it fits there (same shape,
    ``gate``'s dtype): the same values, one map fewer.

    Args:
        value: Any shape.
        gate: Any shape that broadcasts with ``value``.

    Returns:
        The broadcast shape, in the promoted dtype.
    """
    if (
        torch.is_grad_enabled()
        or value.shape != gate.shape
        or torch.result_type(value, gate) != gate.dtype
    ):
        return value * F.gelu(gate)
    return F.gelu(gate).mul_(value)


def _kernel_serves(value: torch.Tensor, gate: torch.Tensor) -> bool:
    """Whether the kernel takes this pair: CPU tensors of one shape and one kernel dtype."""
    return (
        value.device.type == "cpu"
        and gate.device.type == "cpu"
        and value.dtype == gate.dtype
        and value.shape == gate.shape
        and kernel_available(value.dtype)
    )


def _check_pair(value: torch.Tensor, gate: torch.Tensor) -> None:
    if value.shape != gate.shape or value.dtype != gate.dtype:
        raise ValueError(
            f"treeattn::gated_gelu takes two tensors of one shape and dtype, got "
            f"{tuple(value.shape)} {value.dtype} and {tuple(gate.shape)} {gate.dtype}; "
            "call treeattn.ops.gate.gated_gelu, which takes any pair"
        )


# The operators take two tensors of one shape and dtype. Where the kernel cannot serve them (not
# on the CPU, a dtype it lacks, no kernel built — e.g. called through torch.ops) they run
# PyTorch's operators.
@torch.library.custom_op("treeattn::gated_gelu", mutates_args=())
def _forward_op(value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    _check_pair(value, gate)
    if _kernel_serves(value, gate):
        return load_cpu_kernel().gate_forward(value, gate)
    return (value * F.gelu(gate)).contiguous()


@_forward_op.register_fake
def _forward_fake(value, gate):
    return torch.empty_like(value, memory_format=torch.contiguous_format)


@torch.library.custom_op("treeattn::gated_gelu_backward", mutates_args=())
def _backward_op(
    grad_out: torch.Tensor, value: torch.Tensor, gate: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    _check_pair(value, gate)
    _check_pair(grad_out, value)
    if _kernel_serves(value, gate):
        return load_cpu_kernel().gate_backward(grad_out, value, gate)
    return tuple(g.contiguous() for g in _gradients_math(grad_out, value, gate))


@_backward_op.register_fake
def _backward_fake(grad_out, value, gate):
    like = {"memory_format": torch.contiguous_format}
    return torch.empty_like(value, **like), torch.empty_like(value, **like)


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad_out):
    value, gate = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: gradients that can be differentiated again
        return _gradients_math(grad_out, value, gate)
    return _backward_op(grad_out, value, gate)


def _gradients_math(
    grad_out: torch.Tensor, value: torch.Tensor, gate: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's backward in PyTorch operators, differentiable again: ``d·GELU(c)`` and
    ``GELU'(c)·d·v``."""
    return grad_out * F.gelu(gate), torch.ops.aten.gelu_backward(grad_out * value, gate)


_forward_op.register_autograd(_backward, setup_context=_setup_context)


def gated_gelu(value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``value * GELU(gate)`` (exact, erf GELU) of two tensors of one shape.

    Args:
        value: Any shape.
        gate: ``value``'s shape (broadcasting, like other dtypes and devices, takes the PyTorch
            path).

    Returns:
        ``value``'s shape; gradients of both inputs.
    """
    if _kernel_case(value, gate):
        return _forward_op(value, gate)
    return gated_gelu_math(value, gate)


def _kernel_case(value: torch.Tensor, gate: torch.Tensor) -> bool:
    """Whether :func:`gated_gelu` hands this call to the C++ kernel (eager CPU training)."""
    return (
        torch.is_grad_enabled()
        and (value.requires_grad or gate.requires_grad)
        and not torch.compiler.is_compiling()
        and not under_functorch(value, gate)
        and _kernel_serves(value, gate)
    )


# ---------------------------------------------------------------------------------------------
# The gate with its depthwise 3×3 convolution: value · GELU(conv(gate)) on (B, H, W, C) maps.
#
# PyTorch's path writes the convolution's output, then (backward) its gradient and the gradient of
# its input, each a map of the hidden width. In eager CPU training in float32/float64 the kernel
# computes the convolution where the gate needs it (and again in the backward), so the only maps
# are the inputs, the output and the gradients of the inputs. Everywhere else it is the
# convolution followed by gated_gelu.


def dwconv_gated_gelu_math(
    value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """``value · GELU(conv(gate))`` in PyTorch operators (the reference): ``conv`` the depthwise
    3×3 convolution (padding 1) of a channels-last map.

    Args:
        value: ``(B, H, W, C)``.
        gate: ``(B, H, W, C)``.
        weight: ``(C, 1, 3, 3)``.
        bias: ``(C,)``.

    Returns:
        ``(B, H, W, C)``.
    """
    conv = F.conv2d(
        rearrange(gate, "b h w c -> b c h w"), weight, bias, padding=1, groups=weight.shape[0]
    )
    return gated_gelu_math(value, rearrange(conv, "b c h w -> b h w c"))


def _dwconv_serves(
    value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> bool:
    """Whether the kernel takes these tensors: CPU maps ``(B, H, W, C)`` of one shape, a
    ``(C, 1, 3, 3)`` weight and a ``(C,)`` bias, all of one kernel dtype, nothing empty."""
    if bias is None or value.dim() != 4 or value.shape != gate.shape or value.numel() == 0:
        return False
    channels = value.shape[3]
    return (
        tuple(weight.shape) == (channels, 1, 3, 3)
        and tuple(bias.shape) == (channels,)
        and all(t.device.type == "cpu" and t.dtype == value.dtype for t in (gate, weight, bias))
        and value.device.type == "cpu"
        and kernel_available(value.dtype)
    )


def dwconv_kernel_case(
    value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> bool:
    """Whether :func:`dwconv_gated_gelu` hands this call to the C++ kernel: eager CPU training
    (autograd records, something needs a gradient, not compiling) in float32/float64, with a
    finite weight (the operator itself, called directly, skips the padding whatever the weight)."""
    return (
        torch.is_grad_enabled()
        and any(t is not None and t.requires_grad for t in (value, gate, weight, bias))
        and not torch.compiler.is_compiling()
        and not under_functorch(value, gate, weight, bias)
        and _dwconv_serves(value, gate, weight, bias)
        # PyTorch multiplies the zero padding by the weight: NaN at the border for a non-finite
        # one, where the kernel, which skips the padding, would not give it
        and bool(torch.isfinite(weight).all())
    )


def _check_dwconv(value, gate, weight, bias) -> None:
    channels = value.shape[-1] if value.dim() == 4 else None
    if (
        channels is None
        or gate.shape != value.shape
        or tuple(weight.shape) != (channels, 1, 3, 3)
        or tuple(bias.shape) != (channels,)
        or any(t.dtype != value.dtype for t in (gate, weight, bias))
    ):
        raise ValueError(
            "treeattn::dwconv_gated_gelu takes value and gate (B, H, W, C) of one shape, weight "
            "(C, 1, 3, 3) and bias (C,), all of one dtype; got "
            f"{[(tuple(t.shape), t.dtype) for t in (value, gate, weight, bias)]}; call "
            "treeattn.ops.gate.dwconv_gated_gelu, which takes any such call"
        )


@torch.library.custom_op("treeattn::dwconv_gated_gelu", mutates_args=())
def _dwconv_forward_op(
    value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    _check_dwconv(value, gate, weight, bias)
    if _dwconv_serves(value, gate, weight, bias):
        return load_cpu_kernel().dwconv_gate_forward(value, gate, weight, bias)
    return dwconv_gated_gelu_math(value, gate, weight, bias).contiguous()


@_dwconv_forward_op.register_fake
def _dwconv_forward_fake(value, gate, weight, bias):
    return torch.empty_like(value, memory_format=torch.contiguous_format)


@torch.library.custom_op("treeattn::dwconv_gated_gelu_backward", mutates_args=())
def _dwconv_backward_op(
    grad_out: torch.Tensor,
    value: torch.Tensor,
    gate: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    _check_dwconv(value, gate, weight, bias)
    _check_pair(grad_out, value)
    if _dwconv_serves(value, gate, weight, bias):
        return load_cpu_kernel().dwconv_gate_backward(grad_out, value, gate, weight, bias)
    grad_value, grad_gate, grad_weight, grad_bias = _dwconv_gradients_math(
        grad_out, value, gate, weight, bias
    )  # (the weight's gradient already in the weight's layout, as the shape function says)
    return grad_value.contiguous(), grad_gate.contiguous(), grad_weight, grad_bias.contiguous()


@_dwconv_backward_op.register_fake
def _dwconv_backward_fake(grad_out, value, gate, weight, bias):
    like = {"memory_format": torch.contiguous_format}
    return (
        torch.empty_like(value, **like),
        torch.empty_like(value, **like),
        torch.empty_like(weight),
        torch.empty_like(bias, **like),
    )


def _dwconv_gradients_math(
    grad_out: torch.Tensor,
    value: torch.Tensor,
    gate: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kernel's backward in PyTorch's operators (those of :mod:`treeattn.ops.depthwise`):
    ``d·GELU(c)``, and the convolution's gradients for ``dc = GELU'(c)·d·v``, ``c = conv(gate)``."""
    conv = torch.ops.treeattn.depthwise_conv3x3(gate, weight, bias)
    grad_conv = torch.ops.aten.gelu_backward(grad_out * value, conv)
    grad_gate, grad_weight, grad_bias = torch.ops.treeattn.depthwise_conv3x3_backward(
        grad_conv, gate, weight, [True, True, True]
    )
    return grad_out * F.gelu(conv), grad_gate, grad_weight, grad_bias


def _dwconv_setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _dwconv_backward(ctx, grad_out):
    value, gate, weight, bias = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: gradients that can be differentiated again
        inputs = (value, gate, weight, bias)
        wanted = [t for t, need in zip(inputs, ctx.needs_input_grad, strict=True) if need]
        with torch.enable_grad():
            out = dwconv_gated_gelu_math(value, gate, weight, bias)
            grads = iter(torch.autograd.grad(out, wanted, grad_out, create_graph=True))
        return tuple(next(grads) if need else None for need in ctx.needs_input_grad)
    grads = _dwconv_backward_op(grad_out, value, gate, weight, bias)
    return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad, strict=True))


_dwconv_forward_op.register_autograd(_dwconv_backward, setup_context=_dwconv_setup_context)


def dwconv_gated_gelu(
    value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """``value · GELU(conv(gate))``, ``conv`` the depthwise 3×3 convolution (padding 1, zeros
    outside the map) of a channels-last map — the Hi-IR L3 gate with its convolution.

    In eager CPU training (float32/float64) one C++ pass each way (:func:`dwconv_kernel_case`);
    everywhere else :func:`dwconv_gated_gelu_math`.

    Args:
        value: ``(B, H, W, C)``.
        gate: ``(B, H, W, C)``.
        weight: ``(C, 1, 3, 3)``, e.g. a depthwise ``nn.Conv2d``'s weight.
        bias: ``(C,)``.

    Returns:
        ``(B, H, W, C)``; gradients of all four inputs.
    """
    if dwconv_kernel_case(value, gate, weight, bias):
        return _dwconv_forward_op(value, gate, weight, bias)
    return dwconv_gated_gelu_math(value, gate, weight, bias)
