"""The L3 gate with its depthwise 3×3 convolution, value·GELU(conv(gate)): the C++ kernel
(treeattn::dwconv_gated_gelu) against PyTorch's convolution and operators.

Tests that need the compiled kernel skip where it cannot be built (no C++ compiler or ninja); the
rule and fallback tests run everywhere.
"""

import pytest
import torch
import torch.nn.functional as F

import treeattn.ops.gate as gated
from treeattn.layers.ffn import GatedDWConvFFN
from treeattn.ops.gate import dwconv_gated_gelu, dwconv_gated_gelu_math, dwconv_kernel_case


def _inputs(shape, dtype, *, seed=0, spread=1.0):
    """value, gate (B, H, W, C), weight (C, 1, 3, 3) channels-last (as the FFN stores it), bias."""
    gen = torch.Generator().manual_seed(seed)
    channels = shape[3]
    value = torch.randn(shape, dtype=dtype, generator=gen)
    gate = torch.randn(shape, dtype=dtype, generator=gen) * spread
    weight = torch.randn(channels, 1, 3, 3, dtype=dtype, generator=gen) / 3
    weight = weight.contiguous(memory_format=torch.channels_last)
    bias = torch.randn(channels, dtype=dtype, generator=gen) / 3
    return [t.requires_grad_() for t in (value, gate, weight, bias)]


def _run(fn, inputs, grad_out):
    out = fn(*inputs)
    return [out, *torch.autograd.grad(out, inputs, grad_out)]


def _reference(inputs, grad_out):
    """float64 values of the math path."""
    exact = [t.detach().double().requires_grad_() for t in inputs]
    return [t.detach() for t in _run(dwconv_gated_gelu_math, exact, grad_out.double())]


# one pixel, a single row or column, two columns (no pixel with both neighbours), channels under
# one vector / a partial last vector / whole vectors, several images, a layer's map (threads split
# rows across images)
_SHAPES = [
    (1, 1, 1, 3),
    (2, 1, 7, 5),
    (1, 6, 1, 17),
    (2, 3, 2, 11),
    (2, 5, 7, 13),
    (3, 4, 9, 32),
    (1, 16, 16, 72),
]


@pytest.mark.parametrize("shape", _SHAPES)
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_kernel_matches_pytorch_in_float64(kernel, shape, threads):
    torch.set_num_threads(threads)  # the conftest fixture restores the count
    inputs = _inputs(shape, torch.float64, seed=sum(shape))
    assert dwconv_kernel_case(*inputs)
    grad_out = torch.randn(shape, dtype=torch.float64)
    got = _run(dwconv_gated_gelu, inputs, grad_out)
    for g, r in zip(got, _reference(inputs, grad_out), strict=True):
        torch.testing.assert_close(g, r, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 5, 7, 13), (1, 24, 20, 40)])
@pytest.mark.parametrize("spread", [1.0, 40.0])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_is_as_close_to_float64_as_pytorch_in_float32(kernel, shape, spread, threads):
    """Output and gradients of float32 within the error of PyTorch's own float32 path (plus
    rounding), gates far into the GELU's tails included (``spread``)."""
    torch.set_num_threads(threads)
    inputs = _inputs(shape, torch.float32, seed=len(shape), spread=spread)
    grad_out = torch.randn(shape)
    got = _run(dwconv_gated_gelu, inputs, grad_out)
    torch_f32 = _run(dwconv_gated_gelu_math, inputs, grad_out)
    for g, t, r in zip(got, torch_f32, _reference(inputs, grad_out), strict=True):
        scale = r.abs().max().item() + 1.0
        ours, theirs = (g.double() - r).abs().max().item(), (t.double() - r).abs().max().item()
        assert ours <= 2 * theirs + 4e-7 * scale, (ours, theirs, scale)


def test_operator_passes_gradcheck_and_gradgradcheck(kernel):
    """Second derivatives too (create_graph=True takes a differentiable backward)."""
    inputs = _inputs((2, 3, 4, 5), torch.float64, seed=3)
    assert torch.autograd.gradcheck(dwconv_gated_gelu, inputs)
    assert torch.autograd.gradgradcheck(dwconv_gated_gelu, inputs)


def test_frozen_inputs_get_no_gradient(kernel):
    value, gate, weight, bias = _inputs((1, 4, 5, 6), torch.float64, seed=4)
    weight.requires_grad_(False)
    bias.requires_grad_(False)
    assert dwconv_kernel_case(value, gate, weight, bias)
    out = dwconv_gated_gelu(value, gate, weight, bias)
    out.sum().backward()
    assert weight.grad is None and bias.grad is None
    grads = torch.autograd.grad(
        dwconv_gated_gelu_math(value, gate, weight, bias).sum(), (value, gate)
    )
    torch.testing.assert_close(value.grad, grads[0])
    torch.testing.assert_close(gate.grad, grads[1])


def test_weight_gradient_keeps_the_weight_layout(kernel):
    """The FFN stores its weight channels-last; its gradient arrives in that layout (DDP's buckets
    take it without a copy)."""
    for layout in (torch.channels_last, torch.contiguous_format):
        value, gate, weight, bias = _inputs((1, 3, 4, 8), torch.float32, seed=5)
        weight = weight.detach().contiguous(memory_format=layout).requires_grad_()
        dwconv_gated_gelu(value, gate, weight, bias).sum().backward()
        assert weight.grad.stride() == weight.stride()
        ref = torch.autograd.grad(dwconv_gated_gelu_math(value, gate, weight, bias).sum(), weight)
        torch.testing.assert_close(weight.grad, ref[0], atol=1e-5, rtol=1e-5)


def test_kernel_refuses_bad_inputs(kernel):
    value, gate, weight, bias = (t.detach() for t in _inputs((1, 3, 4, 8), torch.float32, seed=6))
    with pytest.raises(ValueError, match="one shape"):
        kernel.dwconv_gate_forward(value, gate[:, :2], weight, bias)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        kernel.dwconv_gate_forward(value[0], gate[0], weight, bias)
    with pytest.raises(ValueError, match="depthwise 3×3"):
        kernel.dwconv_gate_forward(value, gate, weight[:4], bias)
    with pytest.raises(TypeError, match="dtype"):
        kernel.dwconv_gate_forward(value, gate, weight.double(), bias)
    with pytest.raises(ValueError, match="one shape"):
        kernel.dwconv_gate_backward(value[:, :1], value, gate, weight, bias)


def test_operator_refuses_mismatched_inputs():
    value, gate, weight, bias = (t.detach() for t in _inputs((1, 3, 4, 8), torch.float32, seed=7))
    with pytest.raises(ValueError, match="weight"):
        torch.ops.treeattn.dwconv_gated_gelu(value, gate, weight[:, :, :2], bias)
    with pytest.raises(ValueError, match="one dtype"):
        torch.ops.treeattn.dwconv_gated_gelu(value, gate.double(), weight, bias)


def _spy(monkeypatch) -> list:
    calls, real = [], gated._dwconv_forward_op
    monkeypatch.setattr(
        gated, "_dwconv_forward_op", lambda *args: calls.append(args[0].shape) or real(*args)
    )
    return calls


def test_kernel_runs_only_where_autograd_records_on_the_cpu(monkeypatch, kernel):
    calls = _spy(monkeypatch)
    value, gate, weight, bias = _inputs((2, 5, 6, 12), torch.float32, seed=8)
    dwconv_gated_gelu(value, gate, weight, bias)
    assert len(calls) == 1
    with torch.no_grad():  # inference: PyTorch's operators, the same values to the bit
        assert torch.equal(
            dwconv_gated_gelu(value, gate, weight, bias),
            dwconv_gated_gelu_math(value, gate, weight, bias),
        )
    detached = [t.detach() for t in (value, gate, weight, bias)]
    dwconv_gated_gelu(*detached)  # nothing needs a gradient
    dwconv_gated_gelu(*(t.bfloat16() for t in (value, gate, weight, bias)))  # not a kernel dtype
    assert len(calls) == 1


def test_without_the_kernel_it_is_pytorch(monkeypatch):
    calls = _spy(monkeypatch)
    monkeypatch.setattr(gated, "kernel_available", lambda dtype=torch.float32: False)
    inputs = _inputs((1, 4, 5, 6), torch.float64, seed=9)
    grad_out = torch.randn(1, 4, 5, 6, dtype=torch.float64)
    got = _run(dwconv_gated_gelu, inputs, grad_out)
    ref = _run(dwconv_gated_gelu_math, inputs, grad_out)
    for g, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g, r, atol=0, rtol=0)
    assert calls == []


def test_operators_run_pytorch_where_the_kernel_cannot(monkeypatch):
    """Called directly (torch.ops) with no kernel built: PyTorch's operators, not an error."""
    monkeypatch.setattr(gated, "kernel_available", lambda dtype=torch.float32: False)
    inputs = [t.detach() for t in _inputs((1, 3, 4, 5), torch.float64, seed=10)]
    grad_out = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    out = torch.ops.treeattn.dwconv_gated_gelu(*inputs)
    grads = torch.ops.treeattn.dwconv_gated_gelu_backward(grad_out, *inputs)
    ref = _run(dwconv_gated_gelu_math, [t.requires_grad_() for t in inputs], grad_out)
    for g, r in zip([out, *grads], ref, strict=True):
        torch.testing.assert_close(g, r)


def test_backward_runs_the_kernel_unless_a_graph_is_wanted(monkeypatch, kernel):
    calls, real = [], gated._dwconv_backward_op
    monkeypatch.setattr(gated, "_dwconv_backward_op", lambda *a: calls.append(1) or real(*a))
    inputs = _inputs((1, 3, 4, 5), torch.float64, seed=11)
    torch.autograd.grad(dwconv_gated_gelu(*inputs).sum(), inputs)
    assert calls == [1]
    grads = torch.autograd.grad(dwconv_gated_gelu(*inputs).sum(), inputs, create_graph=True)
    assert calls == [1] and all(g.requires_grad for g in grads)


@pytest.mark.slow
def test_operator_registration_passes_opcheck(kernel):
    inputs = [t.detach() for t in _inputs((1, 3, 4, 5), torch.float64, seed=12)]
    torch.library.opcheck(gated._dwconv_forward_op, [t.requires_grad_() for t in inputs])
    grad_out = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    torch.library.opcheck(gated._dwconv_backward_op, [grad_out, *(t.detach() for t in inputs)])


def test_ffn_gradients_with_and_without_the_kernel(monkeypatch, kernel):
    torch.manual_seed(0)
    ffn = GatedDWConvFFN(12, dtype=torch.float64)
    x = torch.randn(2, 9, 11, 12, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(2, 9, 11, 12, dtype=torch.float64)
    calls = _spy(monkeypatch)
    out = ffn(x)
    grads = torch.autograd.grad(out, [x, *ffn.parameters()], grad_out)
    assert len(calls) == 1
    monkeypatch.setattr(gated, "kernel_available", lambda dtype=torch.float32: False)
    ref = ffn(x)
    ref_grads = torch.autograd.grad(ref, [x, *ffn.parameters()], grad_out)
    assert len(calls) == 1
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, atol=1e-11, rtol=1e-10)


def test_ffn_inference_is_the_convolution_and_the_gate_to_the_bit(monkeypatch, kernel):
    calls = _spy(monkeypatch)
    torch.manual_seed(1)
    ffn = GatedDWConvFFN(12).eval()
    x = torch.randn(1, 7, 9, 12)
    with torch.no_grad():
        (w_value, w_gate), (b_value, b_gate) = ffn.fc1.weight.chunk(2), ffn.fc1.bias.chunk(2)
        value, gate = F.linear(x, w_value, b_value), F.linear(x, w_gate, b_gate)
        conv = F.conv2d(
            gate.permute(0, 3, 1, 2),
            ffn.dwconv.conv.weight,
            ffn.dwconv.conv.bias,
            padding=1,
            groups=24,
        )
        hidden = value * F.gelu(conv.permute(0, 2, 3, 1))
        assert torch.equal(ffn(x), ffn.fc2(hidden))
    assert calls == []


def test_ffn_with_a_hooked_or_changed_convolution_runs_it(monkeypatch, kernel):
    """A hook (or a conv no longer the one it was built as) must see its call: no fused path."""
    calls = _spy(monkeypatch)
    torch.manual_seed(2)
    ffn = GatedDWConvFFN(8)
    x = torch.randn(1, 5, 6, 8)
    seen = []
    handle = ffn.dwconv.conv.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    ffn(x).sum().backward()
    handle.remove()
    assert calls == [] and len(seen) == 1
    ffn.dwconv.conv.padding_mode = "reflect"
    ffn(x).sum().backward()
    assert calls == []
    ffn.dwconv.conv.padding_mode = "zeros"
    ffn(x).sum().backward()
    assert len(calls) == 1


def test_kernel_takes_weights_and_biases_of_any_layout(kernel):
    """Sliced, expanded and transposed weights, strided biases: the kernel reads copies (which
    must stay alive through the C call) and returns the weight's gradient in its layout."""
    value, gate, weight, bias = (t.detach() for t in _inputs((2, 5, 6, 8), torch.float64, seed=13))
    grad_out = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    wide = torch.randn(8, 2, 3, 3, dtype=torch.float64)
    layouts = {
        "sliced weight": (wide[:, :1], bias),
        "expanded weight": (weight[:1].expand(8, 1, 3, 3), bias),
        "transposed taps": (weight.transpose(2, 3).contiguous().transpose(2, 3), bias),
        "strided bias": (weight, torch.randn(16, dtype=torch.float64)[::2]),
    }
    for name, (w, b) in layouts.items():
        inputs = [value, gate, w, b]
        assert not all(t.is_contiguous() for t in inputs), name
        got = [kernel.dwconv_gate_forward(*inputs), *kernel.dwconv_gate_backward(grad_out, *inputs)]
        ref = _reference([t.clone().requires_grad_() for t in inputs], grad_out)
        for g, r in zip(got, ref, strict=True):
            torch.testing.assert_close(g, r, atol=1e-12, rtol=1e-12, msg=name)
        assert got[3].shape == w.shape, name


def test_a_non_finite_weight_takes_pytorch_s_path(monkeypatch, kernel):
    """PyTorch multiplies the zero padding by the weight (NaN at the border for an infinite or NaN
    one), which the kernel, skipping the padding, would not: such weights take PyTorch's path."""
    calls = _spy(monkeypatch)
    value, gate, weight, bias = _inputs((1, 3, 4, 2), torch.float64, seed=14)
    with torch.no_grad():
        weight[0, 0, 0, 0] = float("inf")
    out = dwconv_gated_gelu(value, gate, weight, bias)
    assert calls == []
    torch.testing.assert_close(
        out, dwconv_gated_gelu_math(value, gate, weight, bias), equal_nan=True, atol=0, rtol=0
    )
    assert out[0, 0, :, 0].isnan().any()  # the border, as PyTorch has it


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_jvp_through_the_gate_is_pytorch_s(kernel):
    """torch.func transforms take PyTorch's path (the operators have no forward-mode rule, and
    jvp would give a zero tangent)."""
    torch.manual_seed(3)
    ffn = GatedDWConvFFN(8, dtype=torch.float64)
    x, tangent = (
        torch.randn(1, 5, 6, 8, dtype=torch.float64),
        torch.randn(1, 5, 6, 8, dtype=torch.float64),
    )
    _, got = torch.func.jvp(ffn, (x,), (tangent,))
    eps = 1e-6
    expected = (ffn(x + eps * tangent) - ffn(x - eps * tangent)) / (2 * eps)
    torch.testing.assert_close(got, expected.detach(), atol=1e-6, rtol=1e-6)
    inputs = [t.detach() for t in _inputs((1, 3, 4, 5), torch.float64, seed=15)]
    tangents = [torch.randn_like(t) for t in inputs]
    _, got = torch.func.jvp(dwconv_gated_gelu, tuple(inputs), tuple(tangents))
    _, ref = torch.func.jvp(dwconv_gated_gelu_math, tuple(inputs), tuple(tangents))
    torch.testing.assert_close(got, ref)


def test_ffn_module_hooks_still_run(monkeypatch, kernel):
    """Hooks on the conv wrapper, backward hooks on the conv and global module hooks see their
    calls: with any of them the FFN runs the modules, not the fused operator."""
    calls = _spy(monkeypatch)
    torch.manual_seed(4)
    ffn = GatedDWConvFFN(8)
    x = torch.randn(1, 5, 6, 8)
    seen = []
    hooks = [
        lambda: ffn.dwconv.register_forward_hook(lambda m, a, out: seen.append("wrapper")),
        lambda: ffn.dwconv.conv.register_full_backward_hook(lambda m, gi, go: seen.append("bwd")),
        lambda: torch.nn.modules.module.register_module_forward_hook(
            lambda m, a, out: seen.append("global") if m is ffn.dwconv.conv else None
        ),
    ]
    for register in hooks:
        handle = register()
        ffn(x).sum().backward()
        handle.remove()
    assert calls == [] and seen == ["wrapper", "bwd", "global"]
    ffn(x).sum().backward()
    assert len(calls) == 1
