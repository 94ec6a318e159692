"""The L3 gate value·GELU(gate): the C++ kernel (treeattn::gated_gelu) against PyTorch's operators.

Tests that need the compiled kernel skip where it cannot be built (no C++ compiler or ninja); the
rule and fallback tests run everywhere.
"""

import pytest
import torch
import torch.nn.functional as F

import treeattn.ops.gate as gated
from treeattn.ops.gate import gated_gelu, gated_gelu_math


def _inputs(shape, dtype, *, seed=0, spread=3.0):
    gen = torch.Generator().manual_seed(seed)
    value = torch.randn(shape, dtype=dtype, generator=gen)
    gate = torch.randn(shape, dtype=dtype, generator=gen) * spread
    return value.requires_grad_(), gate.requires_grad_()


def _reference(value, gate, grad_out):
    out = value * F.gelu(gate)
    return out, torch.autograd.grad(out, (value, gate), grad_out)


def _check(value, gate, *, atol, rtol):
    out = gated_gelu(value, gate)
    grad_out = torch.randn_like(out)
    ref_out, ref_grads = _reference(value, gate, grad_out)
    torch.testing.assert_close(out, ref_out, atol=atol, rtol=rtol)
    grads = torch.autograd.grad(out, (value, gate), grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=atol, rtol=rtol)


# 1 element, a partial vector, whole vectors, a layer's map (several chunks: threads share it)
_SHAPES = [(1,), (5, 3), (2, 64), (1, 16, 16, 360), (70001,)]


@pytest.mark.parametrize("shape", _SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_matches_pytorch_in_float64(kernel, shape, threads):
    torch.set_num_threads(threads)  # the conftest fixture restores the count
    value, gate = _inputs(shape, torch.float64, seed=len(shape))
    assert gated._kernel_case(value, gate)
    _check(value, gate, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shape", _SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_is_as_close_to_float64_as_pytorch_in_float32(kernel, shape, threads):
    """Output and gradients within 2e-6·(|x| + 1) of the float64 values (PyTorch's own float32
    operators are off by up to 3e-6·(|x| + 1) on a layer's map)."""
    torch.set_num_threads(threads)
    value, gate = _inputs(shape, torch.float32, seed=len(shape) + 1)
    out = gated_gelu(value, gate)
    grad_out = torch.randn_like(out)
    got = [out, *torch.autograd.grad(out, (value, gate), grad_out)]
    exact = [t.detach().double().requires_grad_() for t in (value, gate)]
    ref_out, ref_grads = _reference(*exact, grad_out.double())
    for g, r in zip(got, [ref_out, *ref_grads], strict=True):
        torch.testing.assert_close(g.double(), r.detach(), atol=2e-6, rtol=2e-6)


def test_kernel_is_right_far_out_and_keeps_nan(kernel):
    """Up to float32's largest values (e^(−x²/2) is 0 there, not its last normal value), its
    infinities and NaN: as the float64 operators give them (PyTorch's float32 GELU overflows to
    inf at 3e38 and returns NaN at +inf)."""
    big, inf, nan = 3e38, float("inf"), float("nan")
    far = [1e32, big, inf]
    near = [1e-8, 9.0, 40.0, 1e4]
    gate = torch.tensor([*(-x for x in far + near), 0.0, *near, *far, nan])
    value = torch.linspace(-1.0, 1.0, gate.numel())  # (products that fit float32)
    for dtype in (torch.float32, torch.float64):
        v, g = (t.to(dtype).requires_grad_() for t in (value, gate))
        out = gated_gelu(v, g)
        got = [out, *torch.autograd.grad(out, (v, g), torch.ones_like(out))]
        exact = [t.detach().double().requires_grad_() for t in (value, gate)]
        ref_out, ref_grads = _reference(*exact, torch.ones(gate.numel(), dtype=torch.float64))
        for x, r in zip(got, [ref_out, *ref_grads], strict=True):
            torch.testing.assert_close(x.double(), r.detach(), equal_nan=True, atol=1e-6, rtol=1e-6)


def test_operator_passes_gradcheck_and_gradgradcheck(kernel):
    """Second derivatives too (create_graph=True takes a differentiable backward)."""
    value, gate = _inputs((3, 7, 5), torch.float64, seed=3)
    assert torch.autograd.gradcheck(gated_gelu, (value, gate))
    assert torch.autograd.gradgradcheck(gated_gelu, (value, gate))


def test_strided_inputs(kernel):
    value, gate = _inputs((6, 40), torch.float32, seed=4)
    v, g = value.detach().t().requires_grad_(), gate.detach().t().requires_grad_()
    assert not v.is_contiguous() and gated._kernel_case(v, g)
    _check(v, g, atol=5e-6, rtol=5e-6)


def test_kernel_refuses_bad_inputs(kernel):
    value, gate = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="one shape"):
        kernel.gate_forward(value, gate[:2])
    with pytest.raises(TypeError, match="float32 or float64"):
        kernel.gate_forward(value, gate.double())
    with pytest.raises(TypeError, match="float32 or float64"):
        kernel.gate_backward(value.half(), value.half(), gate.half())


def _spy(monkeypatch) -> list:
    calls, real = [], gated._forward_op

    def spy(value, gate):
        calls.append(value.shape)
        return real(value, gate)

    monkeypatch.setattr(gated, "_forward_op", spy)
    return calls


def test_kernel_runs_only_where_autograd_records_on_the_cpu(monkeypatch, kernel):
    calls = _spy(monkeypatch)
    value, gate = _inputs((2, 8, 8, 12), torch.float32, seed=5)
    out = gated_gelu(value, gate)
    assert len(calls) == 1
    with torch.no_grad():  # inference: PyTorch's operators, the same values to the bit
        plain = value * F.gelu(gate)
        assert torch.equal(gated_gelu(value, gate), plain)
        torch.testing.assert_close(out.detach(), plain)
    gated_gelu(value.detach(), gate.detach())  # nothing needs a gradient
    gated_gelu(value.bfloat16(), gate.bfloat16())  # not a kernel dtype
    gated_gelu(value, gate.double())  # mixed dtypes
    gated_gelu(value[:1], gate)  # broadcasting
    assert len(calls) == 1


def test_without_the_kernel_it_is_pytorch(monkeypatch):
    calls = _spy(monkeypatch)
    monkeypatch.setattr(gated, "kernel_available", lambda dtype=torch.float32: False)
    value, gate = _inputs((3, 9), torch.float64, seed=6)
    _check(value, gate, atol=0, rtol=0)
    assert calls == []


def test_inference_math_writes_into_the_gelu_output_only_when_it_can(monkeypatch):
    outputs, real = [], F.gelu
    monkeypatch.setattr(gated.F, "gelu", lambda x: outputs.append(real(x)) or outputs[-1])
    value, gate = torch.randn(4, 5), torch.randn(4, 5)
    with torch.no_grad():
        out = gated_gelu_math(value, gate)
        assert out is outputs[-1] and torch.equal(out, value * real(gate))
        wide = torch.randn(3, 4, 5)  # broadcast: value larger than gate
        out = gated_gelu_math(wide, gate)
        assert out is not outputs[-1] and torch.equal(out, wide * real(gate))
        out = gated_gelu_math(value, gate.half())  # the product takes value's float32
        assert out is not outputs[-1] and out.dtype == torch.float32


@pytest.mark.slow
def test_compiled_gate_is_pytorch_without_graph_breaks(monkeypatch, kernel):
    """Under torch.compile the compiler gets the plain product (and fuses it itself)."""
    calls = _spy(monkeypatch)
    value, gate = _inputs((4, 6), torch.float32, seed=7)

    def loss(value, gate):
        return gated_gelu(value * 2.0, gate).sin().sum()

    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    got = compiled(value, gate)
    grads = torch.autograd.grad(got, (value, gate))
    assert calls == []
    ref = loss(value, gate)
    ref_grads = torch.autograd.grad(ref, (value, gate))
    torch.testing.assert_close(got, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


@pytest.mark.slow
def test_operator_registration_passes_opcheck(kernel):
    value, gate = _inputs((3, 5), torch.float64, seed=8)
    torch.library.opcheck(gated._forward_op, [value, gate])
    grad_out = torch.randn(3, 5, dtype=torch.float64)
    torch.library.opcheck(gated._backward_op, [grad_out, value.detach(), gate.detach()])


def test_backward_runs_the_kernel_unless_a_graph_is_wanted(monkeypatch, kernel):
    calls, real = [], gated._backward_op
    monkeypatch.setattr(gated, "_backward_op", lambda *args: calls.append(1) or real(*args))
    value, gate = _inputs((4, 6), torch.float64, seed=9)
    torch.autograd.grad(gated_gelu(value, gate).sum(), (value, gate))
    assert calls == [1]
    grads = torch.autograd.grad(gated_gelu(value, gate).sum(), (value, gate), create_graph=True)
    assert calls == [1] and all(g.requires_grad for g in grads)


def test_operators_run_pytorch_where_the_kernel_cannot(monkeypatch):
    """Called directly (torch.ops) with no kernel built: PyTorch's operators, not an error."""
    monkeypatch.setattr(gated, "kernel_available", lambda dtype=torch.float32: False)
    value, gate = (t.detach() for t in _inputs((3, 4), torch.float64, seed=10))
    grad_out = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(torch.ops.treeattn.gated_gelu(value, gate), value * F.gelu(gate))
    grads = torch.ops.treeattn.gated_gelu_backward(grad_out, value, gate)
    _, ref_grads = _reference(value.requires_grad_(), gate.requires_grad_(), grad_out)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r)


def test_operator_refuses_a_mismatched_pair():
    value = torch.randn(3, 4)
    with pytest.raises(ValueError, match="one shape and dtype"):
        torch.ops.treeattn.gated_gelu(value, torch.randn(1, 4))
    with pytest.raises(ValueError, match="one shape and dtype"):
        torch.ops.treeattn.gated_gelu(value, value.double())
