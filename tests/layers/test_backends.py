"""Attention backends agree with the explicit math reference, forward and backward."""

import logging

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from treeattn.layers import LevelAttention, TreeAttention
from treeattn.ops.attention import (
    attention_auto,
    attention_math,
    attention_sdpa,
    resolve_backend,
)


@given(
    n=st.integers(1, 4),
    heads=st.integers(1, 3),
    tokens=st.integers(1, 40),
    dqk=st.integers(1, 16),
    extra_v=st.integers(0, 16),
    with_bias=st.booleans(),
)
def test_sdpa_kernel_matches_math_forward_and_backward(n, heads, tokens, dqk, extra_v, with_bias):
    torch.manual_seed(n + tokens)
    q = torch.randn(n, heads, tokens, dqk, requires_grad=True)
    k = torch.randn(n, heads, tokens, dqk, requires_grad=True)
    v = torch.randn(n, heads, tokens, dqk + extra_v, requires_grad=True)
    bias = torch.randn(1, heads, tokens, tokens, requires_grad=True) if with_bias else None
    inputs = [t for t in (q, k, v, bias) if t is not None]
    scale = dqk**-0.5
    ref = attention_math(q, k, v, bias, scale)
    out = attention_sdpa(q, k, v, bias, scale)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, inputs, grad_out)
    grads = torch.autograd.grad(out, inputs, grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("dqk", "dv", "width"), [(15, 30, 32), (12, 4, 16), (8, 8, 8), (3, 5, 8)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_sdpa_on_head_dims_padded_for_cuda_matches_math(dqk, dv, width, with_bias):
    # what padded_sdpa runs on CUDA (q, k, v padded to one multiple of 8, the output cut back),
    # here on the CPU in float64: the same values and gradients as explicit math
    from treeattn.ops.biased_sdpa import CUDA_HEAD_DIM_MULTIPLE, sdpa_padded_to

    assert width == -(-max(dqk, dv) // CUDA_HEAD_DIM_MULTIPLE) * CUDA_HEAD_DIM_MULTIPLE
    gen = torch.Generator().manual_seed(dqk * 100 + dv)
    q, k = (torch.randn(3, 2, 17, dqk, generator=gen, dtype=torch.float64) for _ in range(2))
    v = torch.randn(3, 2, 17, dv, generator=gen, dtype=torch.float64)
    bias = torch.randn(1, 2, 17, 17, generator=gen, dtype=torch.float64) if with_bias else None
    inputs = [t.requires_grad_() for t in (q, k, v, bias) if t is not None]
    scale = dqk**-0.5
    ref = attention_math(q, k, v, bias, scale)
    out = sdpa_padded_to(q, k, v, bias, scale, width=width)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    grad_out = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ref_grads = torch.autograd.grad(ref, inputs, grad_out)
    grads = torch.autograd.grad(out, inputs, grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, atol=1e-12, rtol=1e-12)


def _pair(cls, dtype, **kw):
    torch.manual_seed(0)
    ref = cls(backend="math", dtype=dtype, **kw)
    fast = cls(backend="sdpa", dtype=dtype, **kw)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


# (dtype, tolerance relative to the largest reference value). Parameter gradients are sums over
# every window and reach the hundreds, and cosine attention scales logits up to 100×, so float32
# is compared relative to their scale (its rounding differs between CPU kernels: an absolute 1e-4
# failed on Intel Xeon machines); float64 checks that both paths compute the same math.
_PRECISIONS = [(torch.float32, 2e-4), (torch.float64, 1e-9)]


def _close(actual, expected, tolerance):
    scale = max(1.0, float(expected.detach().abs().max()))
    torch.testing.assert_close(actual, expected, atol=tolerance * scale, rtol=0)


@given(
    attn_type=st.sampled_from(["dot", "cosine"]),
    pos_bias=st.sampled_from(["cpb", "table", "none"]),
    tree=st.sampled_from([(4,), (2, 8), ((2, 4), (4, 8)), (2, 4, 8)]),
    size=st.tuples(st.integers(1, 18), st.integers(1, 18)),
    level_attention=st.booleans(),
)
def test_modules_agree_across_backends(attn_type, pos_bias, tree, size, level_attention):
    common = {
        "dim": 8,
        "num_heads": 2,
        "patch_sizes": tree,
        "attn_type": attn_type,
        "pos_bias": pos_bias,
    }
    for dtype, tolerance in _PRECISIONS:
        cls = LevelAttention if level_attention else TreeAttention
        ref, fast = _pair(cls, dtype, **common)
        x = torch.randn(2, *size, 8, dtype=dtype, requires_grad=True)
        out_ref, out_fast = ref(x), fast(x)
        _close(out_fast, out_ref, tolerance)
        grad_out = torch.randn_like(out_ref)
        g_ref = torch.autograd.grad(out_ref, [x, *ref.parameters()], grad_out)
        g_fast = torch.autograd.grad(out_fast, [x, *fast.parameters()], grad_out)
        for a, b in zip(g_fast, g_ref, strict=True):
            _close(a, b, tolerance)


def test_unknown_backend_from_environment_is_rejected(monkeypatch):
    monkeypatch.setenv("TREEATTN_ATTN_BACKEND", "fastest")
    with pytest.raises(ValueError, match="fastest"):
        resolve_backend("auto")


def test_auto_follows_the_environment(monkeypatch):
    monkeypatch.setenv("TREEATTN_ATTN_BACKEND", "math")
    assert resolve_backend("auto") is attention_math
    monkeypatch.delenv("TREEATTN_ATTN_BACKEND")
    assert resolve_backend("auto") is attention_auto


def test_xformers_falls_back_to_sdpa_with_a_logged_reason(monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_xformers(name, *args, **kwargs):
        if name.startswith("xformers"):
            raise ImportError("No module named 'xformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xformers)
    with caplog.at_level(logging.WARNING, logger="treeattn.ops.attention"):
        layer = TreeAttention(8, 2, (2, 8), backend="xformers")
    assert layer.levels[0].attend.kernel is attention_sdpa
    assert any("xformers" in r.message and "sdpa" in r.message for r in caplog.records)
    x = torch.randn(1, 8, 8, 8)
    assert layer(x).shape == x.shape


@pytest.mark.parametrize("chunk_bytes", [1, 500, 3000, 2**30])
def test_bias_gradient_path_matches_math_for_any_chunking(monkeypatch, chunk_bytes):
    """The fused path for a learnable bias recomputes maps in chunks; chunking must not matter."""
    import treeattn.ops.biased_sdpa as biased

    monkeypatch.setattr(biased, "_CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(0)
    q, k = torch.randn(2, 7, 3, 20, 4, requires_grad=True).unbind(0)
    v = torch.randn(7, 3, 20, 8, requires_grad=True)
    bias = torch.randn(1, 3, 20, 20, requires_grad=True)
    out = biased.sdpa_with_bias_grad(q, k, v, bias, 0.5)
    ref = attention_math(q, k, v, bias, 0.5)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    grad_out = torch.randn_like(ref)
    for g, r in zip(
        torch.autograd.grad(out, (q, k, v, bias), grad_out),
        torch.autograd.grad(ref, (q, k, v, bias), grad_out),
        strict=True,
    ):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("dqk", "dv"), [(15, 30), (16, 32), (8, 16), (5, 7)]
)  # spare padding columns in q/k and dO/v, or none
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-10), (torch.bfloat16, 3e-2)])
def test_bias_gradient_path_folds_lse_and_delta_exactly(dqk, dv, dtype, tolerance):
    """The backward rebuilds maps from the forward's log-sum-exp, folded into the GEMMs' spare
    padding columns when there are any (not in bf16, whose columns would round it); every case
    gives the math reference's gradients."""
    import treeattn.ops.biased_sdpa as biased

    torch.manual_seed(dqk + dv)
    q, k = (torch.randn(3, 2, 24, dqk, dtype=dtype, requires_grad=True) for _ in range(2))
    v = torch.randn(3, 2, 24, dv, dtype=dtype, requires_grad=True)
    bias = torch.randn(1, 2, 24, 24, dtype=dtype, requires_grad=True)
    inputs = (q, k, v, bias)
    out = biased.sdpa_with_bias_grad(q, k, v, bias, dqk**-0.5)
    ref = attention_math(*(t.double() for t in inputs), dqk**-0.5)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, inputs, grad_out)
    ref_grads = torch.autograd.grad(ref, inputs, grad_out.double())
    _close(out.double(), ref, tolerance)
    for g, r in zip(grads, ref_grads, strict=True):
        assert g.dtype == dtype
        _close(g.double(), r.double(), tolerance)
