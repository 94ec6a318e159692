"""The C++ attention kernel (treeattn::biased_attention) against the PyTorch reference.

Tests that need the compiled kernel skip where it cannot be built (no C++ compiler or ninja); the
fallback tests run everywhere.
"""

import logging

import pytest
import torch

import treeattn.ops.attention as attention
import treeattn.ops.cpu_attention as cpu_attention
import treeattn.ops.cpu_kernel as cpu_kernel
from treeattn.layers import TreeAttention
from treeattn.ops.attention import attention_math, resolve_backend
from treeattn.ops.cpu_attention import biased_attention


def _inputs(n, heads, tokens, dqk, dv, dtype, *, strided=False, seed=0):
    """q, k, v (views of one projection, as in the layers when ``strided``) and a bias."""
    gen = torch.Generator().manual_seed(seed)
    if strided:  # (N, T, heads·(2·Dqk + Dv)) split and viewed per head: no tensor is contiguous
        qkv = torch.randn(n, tokens, heads * (2 * dqk + dv), dtype=dtype, generator=gen)
        q, k, v = qkv.split([heads * dqk, heads * dqk, heads * dv], dim=-1)
        q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))
    else:
        q, k = (torch.randn(n, heads, tokens, dqk, dtype=dtype, generator=gen) for _ in range(2))
        v = torch.randn(n, heads, tokens, dv, dtype=dtype, generator=gen)
    bias = torch.randn(1, heads, tokens, tokens, dtype=dtype, generator=gen)
    return [t.detach().requires_grad_() for t in (q, k, v, bias)]


def _reference(q, k, v, bias, scale, grad_out):
    """Output, row log-sum-exp and gradients of the explicit math path."""
    out = attention_math(q, k, v, bias, scale)
    lse = (torch.matmul(q * scale, k.transpose(-2, -1)) + bias).logsumexp(-1)
    return out, lse, torch.autograd.grad(out, (q, k, v, bias), grad_out)


_SHAPES = [
    (2, 2, 16, 15, 30),  # the layer's head dims
    (3, 2, 17, 5, 7),  # T, Dqk, Dv not whole vectors: padding everywhere
    (1, 1, 1, 1, 1),
    (1, 3, 256, 15, 30),  # a level-1 window of HiIRLayer(180, 6, (16, 64))
    (2, 1, 100, 16, 32),  # the row form, T not a whole number of vectors
    (1, 1, 300, 4, 8),  # three blocks of maps, the last one part
    (2, 2, 9, 12, 4),  # v narrower than q/k
    (2, 2, 64, 15, 30),  # the largest window of the column form (SwinLayer's 8×8)
    (1, 2, 65, 7, 9),  # the smallest of the row form
    (3, 2, 41, 15, 30),  # the column form with a part block of queries
]


@pytest.mark.parametrize("shape", _SHAPES)
@pytest.mark.parametrize("strided", [False, True])
def test_kernel_matches_math_in_float64(kernel, shape, strided):
    q, k, v, bias = _inputs(*shape, torch.float64, strided=strided)
    scale = shape[3] ** -0.5
    grad_out = torch.randn(*shape[:3], shape[4], dtype=torch.float64).transpose(-2, -1)
    grad_out = grad_out.contiguous().transpose(-2, -1)  # a strided gradient too
    ref_out, ref_lse, ref_grads = _reference(q, k, v, bias, scale, grad_out)
    args = [t.detach() for t in (q, k, v, bias)]
    out, lse = kernel.forward(*args, scale)
    # the backward reads any layout of the output too (the forward writes channels inner)
    saved = out.transpose(-2, -1).contiguous().transpose(-2, -1) if strided else out
    grads = kernel.backward(grad_out, *args, saved, lse, scale)
    torch.testing.assert_close(out, ref_out, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(lse, ref_lse, atol=1e-12, rtol=1e-12)
    for name, g, r in zip(("q", "k", "v", "bias"), grads, ref_grads, strict=True):
        assert g.shape == r.shape, name
        torch.testing.assert_close(g, r, atol=1e-12, rtol=1e-10, msg=name)
    # heads merge back into channels without a copy; the bias gradient is a plain tensor
    for t in (out, *grads[:3]):
        assert t.transpose(1, 2).is_contiguous()
    assert grads[3].is_contiguous()


@pytest.mark.parametrize("shape", [*_SHAPES[:4], *_SHAPES[6:]])
def test_kernel_matches_math_in_float32(kernel, shape):
    q, k, v, bias = _inputs(*shape, torch.float32, strided=True, seed=1)
    scale = shape[3] ** -0.5
    grad_out = torch.randn(*shape[:3], shape[4])
    _, ref_lse, ref_grads = _reference(
        *(t.double() for t in (q, k, v, bias)), scale, grad_out.double()
    )
    # the log-sum-exp the backward rebuilds its maps from (vectorised exp and log in float32)
    _, lse = kernel.forward(*(t.detach() for t in (q, k, v, bias)), scale)
    torch.testing.assert_close(lse.double(), ref_lse, atol=2e-6, rtol=1e-6)
    out = biased_attention(q, k, v, bias, scale)
    torch.testing.assert_close(out, attention_math(q, k, v, bias, scale), atol=2e-6, rtol=1e-5)
    grads = torch.autograd.grad(out, (q, k, v, bias), grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        assert g.dtype == torch.float32
        scale_of = max(1.0, float(r.abs().max()))
        torch.testing.assert_close(g.double(), r, atol=2e-5 * scale_of, rtol=0)


@pytest.mark.parametrize("grad_heads_side_by_side", [True, False])
@pytest.mark.parametrize("shape", [(3, 5, 16, 15, 30), (4, 3, 9, 4, 8), (2, 3, 64, 15, 30)])
def test_windows_staged_whole_match_math_on_any_thread_count(
    kernel, shape, grad_heads_side_by_side
):
    """Small windows whose heads lie side by side in every input's rows — q, k, v from one
    projection — are copied whole into each thread's buffer once per window, read there as whole
    vectors running into the next head's columns, and their outputs and gradients written whole per
    window; the output gradient is staged too when its heads are side by side, packed per head when
    each head's rows lie together (as the layers pass it back at level 2). Thread ranges that start
    or end inside a window must give the same values."""
    q, k, v, bias = _inputs(*shape, torch.float64, strided=True, seed=4)
    n, heads, tokens, _, dv = shape
    if grad_heads_side_by_side:
        grad_out = torch.randn(n, tokens, heads, dv, dtype=torch.float64).transpose(1, 2)
    else:
        grad_out = torch.randn(n, heads, tokens, dv, dtype=torch.float64)
    scale = shape[3] ** -0.5
    ref_out, ref_lse, ref_grads = _reference(q, k, v, bias, scale, grad_out)
    args = [t.detach() for t in (q, k, v, bias)]
    for threads in (1, 2, 4):
        torch.set_num_threads(threads)  # the conftest fixture restores the count
        out, lse = kernel.forward(*args, scale)
        grads = kernel.backward(grad_out, *args, out, lse, scale)
        torch.testing.assert_close(out, ref_out, atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(lse, ref_lse, atol=1e-12, rtol=1e-12)
        for name, g, r in zip(("q", "k", "v", "bias"), grads, ref_grads, strict=True):
            torch.testing.assert_close(g, r, atol=1e-12, rtol=1e-10, msg=f"{name}, {threads=}")


def test_operator_passes_gradcheck(kernel):
    q, k, v, bias = _inputs(2, 2, 5, 3, 4, torch.float64, strided=True, seed=2)
    assert torch.autograd.gradcheck(lambda *t: biased_attention(*t, 0.7), (q, k, v, bias))


def test_bias_gradient_sums_over_windows_and_threads(kernel):
    """Each thread keeps its own partial bias gradient; any thread count gives the same sum."""
    q, k, v, bias = _inputs(5, 3, 20, 4, 8, torch.float64, seed=3)
    grad_out = torch.randn(5, 3, 20, 8, dtype=torch.float64)
    args = [t.detach() for t in (q, k, v, bias)]
    out, lse = kernel.forward(*args, 0.5)
    results = []
    for threads in (1, 2, 4):
        torch.set_num_threads(threads)  # the conftest fixture restores the count
        results.append(kernel.backward(grad_out, *args, out, lse, 0.5))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(a, b, atol=1e-13, rtol=1e-13)


def test_kernel_refuses_bad_inputs(kernel):
    q, k, v, bias = (t.detach() for t in _inputs(1, 2, 4, 3, 3, torch.float64))
    with pytest.raises(ValueError, match="bias must be"):
        kernel.forward(q, k, v, bias[:, :1], 1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernel.forward(q.float(), k, v, bias, 1.0)
    with pytest.raises(ValueError, match="q, k must"):
        kernel.forward(q, k[..., :2], v, bias, 1.0)


def test_operator_falls_back_to_pytorch_without_the_kernel(monkeypatch):
    """No kernel here: the operator runs the PyTorch path, same values."""
    monkeypatch.setattr(cpu_kernel, "load_cpu_kernel", lambda: None)
    assert not cpu_attention.kernel_available()
    q, k, v, bias = _inputs(2, 2, 12, 3, 6, torch.float64, strided=True, seed=4)
    grad_out = torch.randn(2, 2, 12, 6, dtype=torch.float64)
    out = biased_attention(q, k, v, bias, 0.6)
    ref_out, _, ref_grads = _reference(q, k, v, bias, 0.6, grad_out)
    torch.testing.assert_close(out, ref_out, atol=1e-12, rtol=1e-12)
    grads = torch.autograd.grad(out, (q, k, v, bias), grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-12, rtol=1e-10)


@pytest.fixture
def fresh_loader():
    """load_cpu_kernel without its per-process answer, restored afterwards."""
    cpu_kernel.load_cpu_kernel.cache_clear()
    yield cpu_kernel.load_cpu_kernel
    cpu_kernel.load_cpu_kernel.cache_clear()


def test_loader_warns_once_and_returns_none_when_the_build_fails(monkeypatch, caplog, fresh_loader):
    attempts = []

    def failing_build(flags, name):
        attempts.append(flags)
        raise RuntimeError("Error building extension: no C++ compiler")

    monkeypatch.setattr(cpu_kernel, "_build", failing_build)
    with caplog.at_level(logging.WARNING, logger="treeattn.ops.cpu_kernel"):
        assert fresh_loader() is None
        assert fresh_loader() is None
    assert len(attempts) == 3  # native, portable, no OpenMP; then never again in this process
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0].getMessage()


def test_loader_is_off_with_the_environment_switch(monkeypatch, fresh_loader):
    monkeypatch.setenv("TREEATTN_CPU_KERNEL", "0")
    monkeypatch.setattr(cpu_kernel, "_build", lambda flags, name: pytest.fail("built anyway"))
    assert fresh_loader() is None


def _spy(monkeypatch):
    calls = []
    real = attention.biased_attention

    def spy(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(attention, "biased_attention", spy)
    return calls


def test_fused_backend_takes_the_operator_only_when_training_on_the_cpu(monkeypatch):
    calls = _spy(monkeypatch)
    fused = resolve_backend("fused")
    q, k, v, bias = _inputs(2, 2, 80, 4, 8, torch.float32, seed=5)
    out = fused(q, k, v, bias, 0.5)
    assert len(calls) == 1
    with torch.no_grad():  # inference: SDPA, no operator
        torch.testing.assert_close(fused(q, k, v, bias, 0.5), out, atol=1e-6, rtol=1e-5)
    fused(q, k, v, bias.detach(), 0.5)  # a fixed bias: SDPA's fused kernel handles it
    fused(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias.bfloat16(), 0.5)  # not a kernel dtype
    assert len(calls) == 1


def _spy_sdpa(monkeypatch) -> list:
    """Record the token counts that reach ``attention_sdpa`` (which still runs)."""
    tokens, real = [], attention.attention_sdpa

    def spy(*args):
        tokens.append(args[0].shape[2])
        return real(*args)

    monkeypatch.setattr(attention, "attention_sdpa", spy)
    return tokens


def test_auto_uses_the_operator_for_large_cpu_windows_in_training(monkeypatch, kernel):
    calls, sdpa = _spy(monkeypatch), _spy_sdpa(monkeypatch)
    monkeypatch.delenv("TREEATTN_ATTN_BACKEND", raising=False)
    auto = resolve_backend("auto")
    for tokens in (4, 9, 16, 17, 32, 64, 80):
        auto(*_inputs(1, 2, tokens, 4, 8, torch.float32), 0.5)
    # the kernel beats explicit math at every window size
    assert [shape[2] for shape in calls] == [4, 9, 16, 17, 32, 64, 80] and sdpa == []
    # where the kernel does not run, explicit math up to 64 tokens, then SDPA: inference, a fixed
    # bias, bfloat16
    with torch.no_grad():
        for tokens in (64, 80):
            auto(*_inputs(1, 2, tokens, 4, 8, torch.float32), 0.5)
    for tokens in (48, 80):
        q, k, v, bias = _inputs(1, 2, tokens, 4, 8, torch.float32)
        auto(q, k, v, bias.detach(), 0.5)
        auto(*(t.bfloat16() for t in (q, k, v, bias)), 0.5)
    assert len(calls) == 7 and sdpa == [80, 80, 80]


def test_auto_keeps_explicit_math_up_to_64_tokens_without_the_kernel(monkeypatch):
    calls = _spy(monkeypatch)
    sdpa_calls = []
    monkeypatch.setattr(attention, "kernel_available", lambda dtype: False)
    monkeypatch.setattr(attention, "attention_sdpa", lambda *a: sdpa_calls.append(a) or a[2])
    monkeypatch.delenv("TREEATTN_ATTN_BACKEND", raising=False)
    auto = resolve_backend("auto")
    for tokens in (33, 64):
        inputs = _inputs(1, 2, tokens, 4, 8, torch.float64)
        torch.testing.assert_close(auto(*inputs, 0.5), attention_math(*inputs, 0.5))
    assert calls == [] and sdpa_calls == []  # the PyTorch fallback would be SDPA's: math wins


@pytest.mark.parametrize("tree", [(4, 16), ((2, 4), (6, 12))])
def test_tree_attention_with_the_fused_backend_matches_math(tree):
    torch.manual_seed(0)
    ref = TreeAttention(12, 2, tree, backend="math", dtype=torch.float64)
    fused = TreeAttention(12, 2, tree, backend="fused", dtype=torch.float64)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(2, 13, 19, 12, dtype=torch.float64, requires_grad=True)
    out_ref, out = ref(x), fused(x)
    torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=1e-12)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, [x, *fused.parameters()], grad_out)
    ref_grads = torch.autograd.grad(out_ref, [x, *ref.parameters()], grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-11, rtol=1e-10)


@pytest.mark.slow
def test_operator_compiles_without_graph_breaks(kernel):
    q, k, v, bias = _inputs(2, 2, 24, 3, 6, torch.float32, strided=True, seed=6)

    def loss(q, k, v, bias):
        return (biased_attention(q * 2.0, k, v, bias, 0.5).sin()).sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    value = compiled(q, k, v, bias)
    grads = torch.autograd.grad(value, (q, k, v, bias))
    ref_value = loss(q, k, v, bias)
    ref_grads = torch.autograd.grad(ref_value, (q, k, v, bias))
    torch.testing.assert_close(value, ref_value)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


@pytest.mark.slow
@pytest.mark.parametrize("bias_layout", ["contiguous", "transposed"])
def test_operator_registration_passes_opcheck(kernel, bias_layout):
    """Schema, shape functions (output strides included) and autograd formula agree with the
    kernels — also for a strided bias, which the compiler may pass (the operators take any
    layout)."""
    q, k, v, bias = _inputs(2, 2, 7, 3, 5, torch.float64, strided=True, seed=7)
    if bias_layout == "transposed":
        bias = bias.detach().transpose(-2, -1).contiguous().transpose(-2, -1).requires_grad_()
    torch.library.opcheck(cpu_attention._forward_op, [q, k, v, bias, 0.5])
    out, lse = cpu_attention._forward_op(q, k, v, bias, 0.5)
    grad_out = torch.randn_like(out)
    backward_args = [grad_out, *(t.detach() for t in (q, k, v, bias, out, lse)), 0.5]
    torch.library.opcheck(cpu_attention._backward_op, backward_args)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_jvp_with_a_learnable_bias_runs_explicit_math(kernel):
    """torch.func transforms take explicit math (the operator has no forward-mode rule, and jvp
    would give a zero tangent; PyTorch's fused CPU kernel has none either)."""
    q, k, v, bias = _inputs(2, 2, 40, 3, 6, torch.float64, seed=13)  # bias needs a gradient
    fused = resolve_backend("fused")
    primals = tuple(t.detach() for t in (q, k, v))
    tangents = tuple(torch.randn_like(t) for t in primals)
    _, got = torch.func.jvp(lambda *qkv: fused(*qkv, bias, 0.5), primals, tangents)
    _, ref = torch.func.jvp(lambda *qkv: attention_math(*qkv, bias, 0.5), primals, tangents)
    torch.testing.assert_close(got, ref)
    assert got.abs().max() > 0
