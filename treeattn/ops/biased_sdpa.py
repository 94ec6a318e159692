"""Fused attention with a *learnable* additive bias, keeping SDPA's fast forward in training.

``scaled_dot_product_attention`` drops to its slow math path when ``attn_mask`` requires grad (a
learnable position bias), materialising every window's attention map for backward. Here the
forward runs the fused kernel with the bias detached and saves only ``q, k, v, out``; the backward
recomputes the attention maps a few windows (or, for huge windows, a few query rows) at a time —
small enough to stay in cache — and returns
the gradients of ``q``, ``k``, ``v`` and the bias (summed over the windows that share it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["padded_sdpa", "sdpa_with_bias_grad"]

# Bytes of attention map recomputed per backward step: a few MiB keeps it in a CPU's L2/L3.
_CHUNK_BYTES = 4 * 2**20
# Head dims the backward's small GEMMs are padded to: 16 runs ~2× faster than 15 on AVX2 CPUs.
_HEAD_DIM_MULTIPLE = 16


def padded_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """SDPA that zero-pads narrower q/k to v's head dim (fused kernels need one head dim)."""
    extra = v.shape[-1] - q.shape[-1]
    if extra > 0:
        q, k = F.pad(q, (0, extra)), F.pad(k, (0, extra))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)


class _SDPAWithBiasGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bias, scale):
        out = padded_sdpa(q, k, v, bias.detach().to(q.dtype), scale)
        ctx.save_for_backward(q, k, v, bias, out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, bias, out = ctx.saved_tensors
        scale = ctx.scale
        n, heads, tokens, width = q.shape
        windows, queries = _chunks(heads, tokens, q.element_size())
        # The scale folded into q once; zero columns (up to a multiple of 16) change no dot
        # product but keep the many small GEMMs on the fast path (15-wide halved heads are slow).
        q, k = _pad_head_dim(q * scale), _pad_head_dim(k)
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        # Summed over every window: accumulate in at least float32 (float64 stays float64).
        acc_dtype = torch.promote_types(bias.dtype, torch.float32)
        grad_bias = torch.zeros(bias.shape, dtype=acc_dtype, device=bias.device)
        # rowsum(dO ⊙ O) = Σ_j P_ij·dP_ij, the softmax backward's correction term.
        delta = (grad_out * out).sum(-1, keepdim=True)
        for w in range(0, n, windows):
            ws = slice(w, w + windows)
            kc, vc = k[ws], v[ws]
            for r in range(0, tokens, queries):
                rs = slice(r, r + queries)
                qc, go = q[ws, :, rs], grad_out[ws, :, rs]
                logits = torch.matmul(qc, kc.transpose(-2, -1)).add_(bias[:, :, rs])
                probs = torch.softmax(logits, dim=-1)
                _matmul_into(grad_v[ws], probs.transpose(-2, -1), go, accumulate=r > 0)
                grad_logits = torch.matmul(go, vc.transpose(-2, -1))
                grad_logits = grad_logits.sub_(delta[ws, :, rs]).mul_(probs)
                grad_q[ws, :, rs] = torch.matmul(grad_logits, kc)
                _matmul_into(grad_k[ws], grad_logits.transpose(-2, -1), qc, accumulate=r > 0)
                grad_bias[:, :, rs] += grad_logits.sum(0, keepdim=True, dtype=acc_dtype)
        grad_q, grad_k = grad_q[..., :width] * scale, grad_k[..., :width]
        return grad_q, grad_k, grad_v, grad_bias.to(bias.dtype), None


def _matmul_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, accumulate: bool) -> None:
    """``out = a @ b`` (no zero-fill, no extra pass), or ``out += a @ b`` for later query chunks."""
    if accumulate:
        out.add_(torch.matmul(a, b))
    else:
        torch.matmul(a, b, out=out)


def _pad_head_dim(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad the last axis to a multiple of :data:`_HEAD_DIM_MULTIPLE` (no copy if it is)."""
    extra = -x.shape[-1] % _HEAD_DIM_MULTIPLE
    return F.pad(x, (0, extra)) if extra else x


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
