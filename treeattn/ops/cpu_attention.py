"""Window attention with a learnable shared bias as one opaque operator, C++ on the CPU.

``treeattn::biased_attention`` computes ``softmax(q·kᵀ·scale + bias)·v`` and each query row's
log-sum-exp; ``treeattn::biased_attention_backward`` returns the gradients of ``q, k, v`` and of
the bias, summed over the windows that share it. Both run the fused C++ kernel
(:mod:`treeattn.ops.cpu_kernel`: one window and head at a time, maps kept in cache, built on first
use) for float32/float64, and otherwise — another dtype, or no kernel on this machine — the
PyTorch path of :mod:`treeattn.ops.biased_sdpa` (PyTorch's fused forward and a chunked backward),
which is also their reference. They are :func:`torch.library.custom_op` operators with shape
functions and a registered autograd formula, so ``torch.compile`` keeps them in its graph as one
node each (no graph break) and never traces into them.
"""

from __future__ import annotations

import torch

from treeattn.ops.biased_sdpa import bias_grad_backward, flash_forward
from treeattn.ops.cpu_kernel import KERNEL_DTYPES, heads_inner, kernel_available, load_cpu_kernel

# KERNEL_DTYPES and kernel_available live in treeattn.ops.cpu_kernel (re-exported here, where
# callers have always found them); other dtypes take the PyTorch path inside the same operator.
__all__ = ["KERNEL_DTYPES", "biased_attention", "kernel_available"]


# Both kernels read and write any strides: the compiler need not copy their inputs into the
# layout eager mode happened to have.
_TAGS = (torch.Tag.flexible_layout,)


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


@torch.library.custom_op("treeattn::biased_attention", mutates_args=(), tags=_TAGS)
def _forward_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    if q.device.type == "cpu" and kernel_available(q.dtype):
        out, lse = load_cpu_kernel().forward(q, k, v, bias, scale)
        return out, lse
    out, lse = flash_forward(q, k, v, bias, scale)
    return heads_inner(out.shape, out).copy_(out), lse.contiguous()


@_forward_op.register_fake
def _forward_fake(q, k, v, bias, scale):
    n, heads, tokens, _ = q.shape
    out = heads_inner((n, heads, tokens, v.shape[-1]), v)
    return out, q.new_empty((n, heads, tokens), dtype=_lse_dtype(q.dtype))


@torch.library.custom_op("treeattn::biased_attention_backward", mutates_args=(), tags=_TAGS)
def _backward_op(
    grad_out: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if q.device.type == "cpu" and kernel_available(q.dtype):
        grads = load_cpu_kernel().backward(grad_out, q, k, v, bias, out, lse, scale)
        return tuple(grads)
    grads = bias_grad_backward(grad_out, q, k, v, bias, out, lse, scale)
    return (*(heads_inner(g.shape, g).copy_(g) for g in grads[:3]), grads[3].contiguous())


@_backward_op.register_fake
def _backward_fake(grad_out, q, k, v, bias, out, lse, scale):
    return (*(heads_inner(t.shape, t) for t in (q, k, v)), bias.new_empty(bias.shape))


def _setup_context(ctx, inputs, output) -> None:
    q, k, v, bias, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, bias, out, lse)
    ctx.scale = scale
    ctx.mark_non_differentiable(lse)


def _backward(ctx, grad_out, _grad_lse):
    q, k, v, bias, out, lse = ctx.saved_tensors
    grads = _backward_op(grad_out, q, k, v, bias, out, lse, ctx.scale)
    return (*grads, None)


_forward_op.register_autograd(_backward, setup_context=_setup_context)


def biased_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
) -> torch.Tensor:
    """``softmax(q·kᵀ·scale + bias)·v`` whose bias (shared by all windows) gets a gradient.

    Args:
        q: ``(N, heads, T, Dqk)``.
        k: ``(N, heads, T, Dqk)``.
        v: ``(N, heads, T, Dv)`` (the PyTorch fallback needs ``Dv ≥ Dqk``).
        bias: ``(1, heads, T, T)``, of ``q``'s dtype.
        scale: Factor on ``q·kᵀ``.

    Returns:
        ``(N, heads, T, Dv)``, laid out as ``(N, T, heads, Dv)``
        (:func:`~treeattn.ops.cpu_kernel.heads_inner`); the gradients of ``q, k, v`` too.
    """
    out, _ = _forward_op(q, k, v, bias.contiguous(), float(scale))
    return out
