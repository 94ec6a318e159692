"""``value · GELU(gate)`` — the gate of Hi-IR's L3 feed-forward — one pass each way in training.

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

from treeattn.ops.cpu_kernel import kernel_available, load_cpu_kernel

__all__ = ["gated_gelu", "gated_gelu_math"]


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
        and _kernel_serves(value, gate)
    )
