"""Fused attention with a *learnable* additive bias, keeping SDPA's fast forward in training.

``scaled_dot_product_attention`` drops to its slow math path when ``attn_mask`` requires grad (a
learnable position bias), materialising every window's attention map for backward. Here the
forward runs the fused kernel with the bias detached and saves only ``q, k, v, out`` and each
row's log-sum-exp; the backward rebuilds the attention maps a few windows (or, for huge windows,
a few query rows) at a time — small enough to stay in cache — as ``exp(logits − lse)``, with no
softmax pass, and returns the gradients of ``q``, ``k``, ``v`` and the bias (summed over the
windows that share it).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "CUDA_HEAD_DIM_MULTIPLE",
    "bias_grad_backward",
    "flash_forward",
    "padded_sdpa",
    "sdpa_padded_to",
    "sdpa_with_bias_grad",
]

# Bytes of attention map recomputed per backward step: a few MiB keeps it in a CPU's L2/L3.
_CHUNK_BYTES = 4 * 2**20
# Head dims the backward's small GEMMs are padded to: 16 runs ~2× faster than 15 on AVX2 CPUs.
_HEAD_DIM_MULTIPLE = 16
# Head dims CUDA's fused SDPA kernels take: the memory-efficient kernel a multiple of 8 in
# bf16/half (of 4 in float32), flash and cuDNN a multiple of 8.
CUDA_HEAD_DIM_MULTIPLE = 8


def padded_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """SDPA on zero-padded head dims (zero columns change no dot product).

    On the CPU narrower q/k are padded to v's head dim (the fused kernels need one head dim). On
    CUDA q, k and v are padded to one multiple of :data:`CUDA_HEAD_DIM_MULTIPLE` and the output is
    cut back to v's width: the fused kernels refuse other head dims (Hi-IR-B's 15 and 30), and
    SDPA would fall back to its math path, which builds every attention map.
    """
    if q.device.type == "cuda":
        width = max(q.shape[-1], v.shape[-1])
        return sdpa_padded_to(
            q, k, v, bias, scale, width=-(-width // CUDA_HEAD_DIM_MULTIPLE) * CUDA_HEAD_DIM_MULTIPLE
        )
    q, k = _pad_to(q, v.shape[-1]), _pad_to(k, v.shape[-1])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)


def sdpa_padded_to(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor | None,
    scale: float,
    *,
    width: int,
) -> torch.Tensor:
    """SDPA with q, k and v zero-padded to head dim ``width``; the output has v's width."""
    out = F.scaled_dot_product_attention(
        _pad_to(q, width), _pad_to(k, width), _pad_to(v, width), attn_mask=bias, scale=scale
    )
    return out[..., : v.shape[-1]]


class _SDPAWithBiasGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, scale):
        out, lse = flash_forward(q, k, v, bias.detach(), scale)
        ctx.save_for_backward(q, k, v, bias, out, lse)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, bias, out, lse = ctx.saved_tensors
        grads = bias_grad_backward(grad_out, q, k, v, bias, out, lse, ctx.scale)
        return (*grads, None)


def flash_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's fused CPU attention forward: ``out`` and each query row's log-sum-exp ``lse``
    (``(N, heads, T)``, float32 for bf16/half inputs), which SDPA itself drops."""
    qp, kp = _pad_to(q, v.shape[-1]), _pad_to(k, v.shape[-1])
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        qp, kp, v, 0.0, False, attn_mask=bias.to(q.dtype), scale=scale
    )


def bias_grad_backward(
    grad_out: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    bias: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of ``q, k, v`` and the shared ``bias`` from :func:`flash_forward`'s ``out, lse``,
    the attention maps rebuilt a cache-sized chunk at a time."""
    n, heads, tokens, width = q.shape
    windows, queries = _chunks(heads, tokens, q.element_size())
    # rowsum(dO ⊙ O) = Σ_j P_ij·dP_ij, the softmax backward's correction term.
    delta = (grad_out * out).sum(-1, keepdim=True)
    # The attention maps are rebuilt as exp(q·kᵀ·scale + bias − lse): no softmax pass. With
    # the scale folded into q, q and k are zero-padded to a multiple of 16 (zero columns
    # change no dot product, and 16-wide GEMMs run ~2× faster than 15-wide); when that
    # leaves a spare column, −lse rides in it (against a column of ones in k), so the GEMM
    # subtracts it. Likewise −delta rides in a spare column of dO against ones in v.
    exact = lse.dtype == q.dtype  # a float32 lse rounded into bf16 columns would be off
    q_lse = _with_column(q * scale, -lse if exact else None)
    k_ones = _with_column(k, torch.ones_like(lse) if q_lse.folded else None)
    go_delta = _with_column(grad_out, -delta[..., 0] if exact else None)
    v_ones = _with_column(v, torch.ones_like(lse) if go_delta.folded else None)
    qx, kx, gox, vx = q_lse.tensor, k_ones.tensor, go_delta.tensor, v_ones.tensor
    grad_q, grad_k, grad_v = torch.empty_like(qx), torch.empty_like(kx), torch.empty_like(v)
    # Summed over every window: accumulate in at least float32 (float64 stays float64).
    acc_dtype = torch.promote_types(bias.dtype, torch.float32)
    grad_bias = torch.zeros(bias.shape, dtype=acc_dtype, device=bias.device)
    for w in range(0, n, windows):
        ws = slice(w, w + windows)
        kc, vc = kx[ws], vx[ws]
        for r in range(0, tokens, queries):
            rs = slice(r, r + queries)
            qc = qx[ws, :, rs]
            logits = torch.matmul(qc, kc.transpose(-2, -1)).add_(bias[:, :, rs])
            if not q_lse.folded:
                logits.sub_(lse[ws, :, rs, None])
            probs = logits.exp_()
            _matmul_into(grad_v[ws], probs.transpose(-2, -1), grad_out[ws, :, rs], r > 0)
            grad_logits = torch.matmul(gox[ws, :, rs], vc.transpose(-2, -1))
            if not go_delta.folded:
                grad_logits.sub_(delta[ws, :, rs])
            grad_logits = grad_logits.mul_(probs)
            grad_q[ws, :, rs] = torch.matmul(grad_logits, kc)
            _matmul_into(grad_k[ws], grad_logits.transpose(-2, -1), qc, r > 0)
            grad_bias[:, :, rs] += grad_logits.sum(0, keepdim=True, dtype=acc_dtype)
    grad_q, grad_k = grad_q[..., :width] * scale, grad_k[..., :width]
    return grad_q, grad_k, grad_v, grad_bias.to(bias.dtype)


class _Padded(NamedTuple):
    tensor: torch.Tensor
    folded: bool  # whether the extra column holds the given values


def _with_column(x: torch.Tensor, column: torch.Tensor | None) -> _Padded:
    """``x`` zero-padded to a multiple of :data:`_HEAD_DIM_MULTIPLE` on the last axis, with
    ``column`` (shape ``x.shape[:-1]``) written just after the data when padding leaves room."""
    width = x.shape[-1]
    padded = _pad_to(x, -(-width // _HEAD_DIM_MULTIPLE) * _HEAD_DIM_MULTIPLE)
    if column is None or padded.shape[-1] == width:
        return _Padded(padded, False)
    padded[..., width] = column
    return _Padded(padded, True)


def _matmul_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, accumulate: bool) -> None:
    """``out = a @ b`` (no zero-fill, no extra pass), or ``out += a @ b`` for later query chunks."""
    if accumulate:
        out.add_(torch.matmul(a, b))
    else:
        torch.matmul(a, b, out=out)


def _pad_to(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the last axis to ``width`` (no copy if it is that wide already)."""
    extra = width - x.shape[-1]
    return F.pad(x, (0, extra)) if extra > 0 else x


def _chunks(heads: int, tokens: int, itemsize: int) -> tuple[int, int]:
    """Windows and query rows per backward step so one step's attention map fits the budget."""
    per_window = heads * tokens * tokens * itemsize
    if per_window <= _CHUNK_BYTES:
        return _CHUNK_BYTES // per_window, tokens
    return 1, max(1, _CHUNK_BYTES // (heads * tokens * itemsize))


def sdpa_with_bias_grad(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
) -> torch.Tensor:
    """Attention ``softmax(q·kᵀ·scale + bias)·v`` whose bias gets a gradient, fused forward.

    Args:
        q: ``(N, heads, T, Dqk)``.
        k: ``(N, heads, T, Dqk)``.
        v: ``(N, heads, T, Dv)``, ``Dv ≥ Dqk``.
        bias: ``(1, heads, T, T)``, shared by all windows.
        scale: Factor on ``q·kᵀ``.
    """
    return _SDPAWithBiasGrad.apply(q, k, v, bias, scale)
