"""Attention kernels and backend choice.

Every kernel has the signature ``kernel(q, k, v, bias, scale) -> out`` with ``q, k`` of shape
``(N, heads, T, Dqk)``, ``v`` of shape ``(N, heads, T, Dv)``, an additive ``bias`` broadcastable to
``(N, heads, T, T)`` (or ``None``) and a float ``scale`` applied to ``q·kᵀ``.

Backends are chosen once, when a module is built (:func:`resolve_backend`), never in ``forward``:

* ``math`` — explicit ``softmax(q·kᵀ·scale + bias)·v``, the reference;
* ``sdpa`` — :func:`torch.nn.functional.scaled_dot_product_attention`, bias as ``attn_mask``;
* ``fused`` — CPU training with a learnable shared bias runs treeattn's C++ kernel
  (:mod:`treeattn.ops.cpu_attention`, built on first use; the PyTorch path where it cannot be),
  everything else ``sdpa``;
* ``xformers`` — ``xformers.ops.memory_efficient_attention`` on CUDA; an optional extra, imported
  lazily; unavailable → SDPA with one logged reason;
* ``auto`` — the ``TREEATTN_ATTN_BACKEND`` environment variable if set, else :func:`attention_auto`:
  ``math`` for small CPU windows where ``fused`` would run SDPA (≤ 64 tokens, where it beats SDPA's
  fused kernels forward and backward), ``fused`` otherwise (the C++ kernel beats explicit math at
  every window size it runs).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable

import torch

from treeattn.ops.biased_sdpa import padded_sdpa, sdpa_with_bias_grad
from treeattn.ops.cpu_attention import biased_attention
from treeattn.ops.cpu_kernel import KERNEL_DTYPES, kernel_available, under_functorch

__all__ = [
    "BACKENDS",
    "AttentionKernel",
    "attention_auto",
    "attention_fused",
    "attention_math",
    "attention_sdpa",
    "resolve_backend",
]

logger = logging.getLogger(__name__)

AttentionKernel = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, float], torch.Tensor
]


def attention_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """Reference attention: ``softmax(q·kᵀ·scale + bias)·v``."""
    logits = torch.matmul(q * scale, k.transpose(-2, -1))
    if bias is not None:
        logits = _add_bias(logits, bias)
    return torch.matmul(logits.softmax(dim=-1), v)


def _add_bias(logits: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``logits + bias``; in inference into ``logits`` itself (a fresh matmul output), when that
    keeps the dtype the sum would have (not under autocast with a wider bias). Never while
    autograd records, nor for the compiler (its dynamic-shape lowering of the mutated matmul
    output fails)."""
    in_place = not (torch.compiler.is_compiling() or torch.is_grad_enabled())
    if in_place and torch.result_type(logits, bias) == logits.dtype:
        return logits.add_(bias)
    return logits + bias


def attention_sdpa(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """Attention through :func:`torch.nn.functional.scaled_dot_product_attention`.

    Narrower q/k (tree attention halves them) are zero-padded to v's head dim for the fused
    kernels (on CUDA q, k and v to one multiple of 8:
    :func:`~treeattn.ops.biased_sdpa.padded_sdpa`). On the CPU, where SDPA falls back to its math
    path for a bias that needs a gradient (a learnable position bias while training), a shared
    bias goes through :func:`~treeattn.ops.biased_sdpa.sdpa_with_bias_grad` instead: the fused
    forward and a cache-sized backward. CUDA's memory-efficient kernel returns the bias gradient
    itself, and under ``torch.compile`` the compiler gets plain SDPA.
    """
    if bias is not None:
        bias = bias.to(q.dtype)
        if (
            bias.requires_grad
            and bias.shape[0] == 1
            and q.device.type == "cpu"
            and torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
        ):
            return sdpa_with_bias_grad(q, k, v, bias, scale)
    return padded_sdpa(q, k, v, bias, scale)


def attention_fused(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """Training on the CPU with a learnable shared bias: treeattn's fused C++ kernel.

    The case where PyTorch has no fast path (float32/float64 CPU tensors, a ``(1, heads, T, T)``
    bias that needs a gradient, autograd recording) runs
    :func:`~treeattn.ops.cpu_attention.biased_attention`: one opaque operator, forward and
    backward, eager and under ``torch.compile`` alike (no graph break). Its C++ kernel is built on
    first use; where it cannot be built the operator runs the PyTorch path of
    :func:`attention_sdpa` inside. Everything else — inference, a fixed or no bias, bf16, GPUs,
    ``torch.export`` (ONNX and ``.pt2`` files hold standard operators only) — is
    :func:`attention_sdpa`. Under ``torch.func`` transforms it is :func:`attention_math`.
    """
    if under_functorch(q, k, v, bias):
        # torch.func (jvp, vmap): neither the C++ operator nor PyTorch's fused CPU kernels have
        # forward-mode rules (the operator would give a zero tangent); explicit math has them all
        return attention_math(q, k, v, bias, scale)
    if _kernel_case(q, bias):
        return biased_attention(q, k, v, bias.to(q.dtype), scale)
    return attention_sdpa(q, k, v, bias, scale)


def _kernel_case(q: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether :func:`attention_fused` hands this call to treeattn's C++ kernel operator."""
    return (
        bias is not None
        and bias.requires_grad
        and torch.is_grad_enabled()
        and not torch.compiler.is_exporting()  # exported graphs (ONNX, .pt2) hold standard ops
        and q.device.type == "cpu"
        and q.dtype in KERNEL_DTYPES
        and bias.dim() == 4
        and bias.shape[0] == 1
    )


# Window size up to which explicit attention beats SDPA's fused CPU kernel (measured on a 2-core
# AVX2 machine, forward and forward+backward, 16–64 tokens vs 256).
SMALL_WINDOW_TOKENS = 64


def attention_auto(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """``math`` for small windows on the CPU where ``fused`` would run SDPA, ``fused`` otherwise
    (shape/device rule, no state).

    ``fused`` is treeattn's C++ kernel where PyTorch has no fast path (CPU training with a
    learnable bias), SDPA elsewhere. Explicit math beats SDPA up to :data:`SMALL_WINDOW_TOKENS`
    tokens; the C++ kernel (where it is built) beats explicit math at every size, down to 4-token
    windows (``benchmarks/ab_small_windows.py``: fwd + bwd on views of one projection, 0.45–0.82×
    the time at 4–64 tokens on a 2-core AMD EPYC, Zen 3, 1 and 2 threads). Under
    ``torch.compile`` small windows take ``fused`` too: one opaque op compiles in a fraction of the
    time the explicit softmax graph takes with dynamic shapes.
    """
    if _small_cpu_window(q, bias):
        return attention_math(q, k, v, bias, scale)
    return attention_fused(q, k, v, bias, scale)


def _small_cpu_window(q: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether explicit math beats the kernel ``fused`` would run (eager CPU only): SDPA's, in
    windows of up to :data:`SMALL_WINDOW_TOKENS` tokens."""
    if q.device.type != "cpu" or torch.compiler.is_compiling():
        return False
    return q.shape[-2] <= SMALL_WINDOW_TOKENS and not (
        _kernel_case(q, bias) and kernel_available(q.dtype)
    )


@functools.cache
def _log_once(message: str) -> None:
    logger.warning(message)


def _xformers_kernel() -> AttentionKernel:
    """Build the xformers kernel, or explain why not and return SDPA."""
    try:
        from xformers.ops import memory_efficient_attention
    except ImportError as err:
        _log_once(
            f"backend='xformers' requested but xformers is not importable ({err}); using 'sdpa'. "
            "Install it on a CUDA machine with `pip install treeattn[xformers]`."
        )
        return attention_sdpa

    def attention_xformers(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        if not q.is_cuda:
            _log_once("xformers attention runs on CUDA only; using 'sdpa' for CPU tensors.")
            return attention_sdpa(q, k, v, bias, scale)
        n, heads, tokens, _ = q.shape
        if bias is not None:
            # xformers wants a (N, heads, T, T) bias whose last dim is padded to a multiple of 8.
            padded = -(-tokens // 8) * 8
            storage = q.new_zeros(n, heads, tokens, padded)
            storage[..., :tokens] = bias.to(q.dtype)
            bias = storage[..., :tokens]
        out = memory_efficient_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_bias=bias, scale=scale
        )
        return out.transpose(1, 2)

    return attention_xformers


BACKENDS: dict[str, Callable[[], AttentionKernel]] = {
    "auto": lambda: attention_auto,
    "math": lambda: attention_math,
    "sdpa": lambda: attention_sdpa,
    "fused": lambda: attention_fused,
    "xformers": _xformers_kernel,
}


def resolve_backend(backend: str) -> AttentionKernel:
    """Return the attention kernel for a backend name: ``auto``, ``sdpa``, ``fused``, ``math``,
    ``xformers``.

    Raises:
        ValueError: for an unknown name (also when it comes from ``TREEATTN_ATTN_BACKEND``).
    """
    if not isinstance(backend, str):
        raise TypeError(
            f"backend={backend!r} must be a str naming one of {list(BACKENDS)}, "
            f"got {type(backend).__name__}"
        )
    name = backend
    if backend == "auto":
        name = os.environ.get("TREEATTN_ATTN_BACKEND", "auto")
    if name not in BACKENDS:
        raise ValueError(
            f"{backend=} (resolved to {name!r}) is not a known attention backend; "
            f"use one of {list(BACKENDS)}"
        )
    return BACKENDS[name]()
