"""treeattn::depthwise_conv3x3, the FFNs' depthwise convolution as one operator under compile."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from treeattn.layers.ffn import GatedDWConvFFN, LeFF, _DepthwiseConv
from treeattn.ops.depthwise import depthwise_conv3x3


def _conv_reference(x, weight, bias):
    y = F.conv2d(rearrange(x, "b h w c -> b c h w"), weight, bias, padding=1, groups=x.shape[-1])
    return rearrange(y, "b c h w -> b h w c")


def _inputs(dtype, *, shape=(2, 7, 9, 5), seed=0):
    gen = torch.Generator().manual_seed(seed)
    conv = _DepthwiseConv(shape[-1], dtype=dtype)
    with torch.no_grad():  # the module's random init, drawn again from the test's generator
        conv.conv.weight.copy_(torch.randn(conv.conv.weight.shape, generator=gen, dtype=dtype))
        conv.conv.bias.copy_(torch.randn(conv.conv.bias.shape, generator=gen, dtype=dtype))
    x = torch.randn(shape, generator=gen, dtype=dtype, requires_grad=True)
    return x, conv.conv.weight, conv.conv.bias


def test_values_and_gradients_match_the_convolution_in_float64():
    x, weight, bias = _inputs(torch.float64)
    grad_y = torch.randn(x.shape, dtype=torch.float64)
    outs, grads = [], []
    for fn in (depthwise_conv3x3, _conv_reference):
        y = fn(x, weight, bias)
        outs.append(y)
        grads.append(torch.autograd.grad(y, (x, weight, bias), grad_y))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
    for mine, reference in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(mine, reference, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(depthwise_conv3x3, (x, weight, bias))


def test_layouts_follow_the_shape_functions():
    """Output contiguous (B, H, W, C), the weight's gradient in the weight's layout — also for a
    non-contiguous input map."""
    x, weight, bias = _inputs(torch.float32, shape=(1, 6, 8, 4))
    strided = rearrange(x.detach(), "b h w c -> b w h c").requires_grad_()  # a transposed view
    y = depthwise_conv3x3(strided, weight, bias)
    assert y.is_contiguous()
    torch.testing.assert_close(y, _conv_reference(strided, weight, bias))
    y.sum().backward()
    assert strided.grad.shape == strided.shape
    assert weight.grad.stride() == weight.stride()


@pytest.mark.parametrize("weight_layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("strided_input", [False, True])
def test_operators_pass_opcheck(weight_layout, strided_input):
    x, weight, bias = _inputs(torch.float32, shape=(2, 5, 6, 3))
    if weight_layout == "contiguous":
        weight = weight.detach().contiguous().requires_grad_()
    if strided_input:
        x = rearrange(x.detach(), "b h w c -> b w h c").requires_grad_()
    torch.library.opcheck(torch.ops.treeattn.depthwise_conv3x3.default, (x, weight, bias))
    grad_y = torch.randn(x.shape)
    backward = torch.ops.treeattn.depthwise_conv3x3_backward.default
    for mask in ([True, True, True], [True, False, False], [False, True, True]):
        torch.library.opcheck(backward, (grad_y, x.detach(), weight.detach(), mask))


@pytest.mark.parametrize("frozen", ["x", "weight and bias"])
def test_only_the_gradients_asked_for_are_returned_and_they_match(frozen):
    x, weight, bias = _inputs(torch.float64)
    if frozen == "x":
        x = x.detach()
    else:
        weight, bias = weight.detach(), bias.detach()
    wanted = [t for t in (x, weight, bias) if t.requires_grad]
    grad_y = torch.randn(x.shape, dtype=torch.float64)
    mine = torch.autograd.grad(depthwise_conv3x3(x, weight, bias), wanted, grad_y)
    reference = torch.autograd.grad(_conv_reference(x, weight, bias), wanted, grad_y)
    for a, b in zip(mine, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_autocast_casts_like_a_convolution(dtype):
    """bf16 autocast runs the conv in bf16 from float32 inputs, and leaves float64 alone."""
    x, weight, bias = _inputs(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mine = depthwise_conv3x3(x, weight, bias)
        reference = _conv_reference(x, weight, bias)
    assert (
        mine.dtype
        == reference.dtype
        == (torch.float64 if dtype == torch.float64 else torch.bfloat16)
    )
    torch.testing.assert_close(mine, reference.contiguous(), rtol=0, atol=0)


def _compiled_and_eager(compiled, loss, x, module):
    """Pairs (compiled, eager) of the loss on ``x`` and of its gradient for each parameter."""
    results = []
    for fn in (compiled, loss):
        value = fn(x)
        results.append((value, *torch.autograd.grad(value, list(module.parameters()))))
    return zip(*results, strict=True)


@pytest.mark.parametrize("ffn_class", [GatedDWConvFFN, LeFF])
def test_compiled_ffn_holds_the_operator_and_matches_eager(ffn_class):
    torch.manual_seed(0)
    ffn = ffn_class(6, 2.0, dtype=torch.float64)
    x = torch.randn(2, 5, 7, 6, dtype=torch.float64)

    def loss(x):
        return ffn(x).square().mean()

    explained = torch._dynamo.explain(loss)(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    graph_code = explained.graphs[0].code
    assert "treeattn.depthwise_conv3x3" in graph_code
    torch._dynamo.reset()
    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    for mine, reference in _compiled_and_eager(compiled, loss, x, ffn):
        torch.testing.assert_close(mine, reference, rtol=1e-12, atol=1e-12)


def test_exported_ffn_holds_standard_operators():
    ffn = GatedDWConvFFN(4, 2.0).eval()
    exported = torch.export.export(ffn, (torch.randn(1, 6, 6, 4),))
    targets = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    assert not any("treeattn" in target for target in targets)
    assert any("conv2d" in target or "convolution" in target for target in targets)


def test_compiled_ffn_under_bf16_autocast_computes_the_conv_in_bf16_like_eager():
    torch.manual_seed(0)
    ffn = GatedDWConvFFN(8, 2.0)
    x = torch.randn(1, 6, 6, 8)

    def loss(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return ffn(x).float().square().mean()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    for mine, reference in _compiled_and_eager(compiled, loss, x, ffn):
        assert mine.dtype == reference.dtype
        torch.testing.assert_close(mine, reference, rtol=1e-2, atol=1e-3)


def test_compiled_ffn_keeps_a_hook_on_its_convolution():
    """A hooked (or swapped-in) convolution is traced as it is, so its hook still runs."""
    torch.manual_seed(0)
    ffn = GatedDWConvFFN(4, 2.0)
    ffn.dwconv.conv.register_forward_hook(lambda module, inputs, output: 2 * output)
    x = torch.randn(1, 5, 5, 4)
    compiled = torch.compile(ffn, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), ffn(x))
