"""The FFNs' depthwise 3×3 convolution of a channels-last map as one opaque operator.

``treeattn::depthwise_conv3x3`` maps ``(B, H, W, C)`` to ``(B, H, W, C)`` (padding 1, one 3×3
filter per channel, a bias per channel) and ``treeattn::depthwise_conv3x3_backward`` returns the
gradients of the map, the weight and the bias. Both run PyTorch's own convolution kernels —
exactly what eager autograd runs — on the channels-last views of the maps. As
:func:`torch.library.custom_op` operators with shape functions and a registered autograd formula,
``torch.compile`` keeps each as one node: inductor neither re-lays out the map around the
convolution nor lowers its backward into a slower form, and symbolic sizes stay out of its
stride decisions (a dynamic-shape training graph compiles).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

__all__ = ["depthwise_conv3x3"]


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """A contiguous ``(B, H, W, C)`` map viewed as a channels-last ``(B, C, H, W)`` tensor."""
    return rearrange(x.contiguous(), "b h w c -> b c h w")


def _bhwc(y: torch.Tensor) -> torch.Tensor:
    """A ``(B, C, H, W)`` result as a contiguous ``(B, H, W, C)`` map (a view when the result is
    channels-last, as the convolution of a channels-last input is)."""
    return rearrange(y, "b c h w -> b h w c").contiguous()


@torch.library.custom_op("treeattn::depthwise_conv3x3", mutates_args=())
def _forward_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return _bhwc(F.conv2d(_nchw(x), weight, bias, padding=1, groups=weight.shape[0]))


@_forward_op.register_fake
def _forward_fake(x, weight, bias):
    return x.new_empty(x.shape)


@torch.library.custom_op("treeattn::depthwise_conv3x3_backward", mutates_args=())
def _backward_op(
    grad_y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, output_mask: list[bool]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    channels = weight.shape[0]
    grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
        _nchw(grad_y),
        _nchw(x),
        weight,
        [channels],  # bias sizes
        [1, 1],  # stride
        [1, 1],  # padding
        [1, 1],  # dilation
        False,  # transposed
        [0, 0],  # output padding
        channels,  # groups
        output_mask,
    )
    # The weight's gradient in the weight's own layout, which the shape function promises.
    grads = (
        _bhwc(grad_x) if output_mask[0] else None,
        torch.empty_like(weight).copy_(grad_weight) if output_mask[1] else None,
        grad_bias,
    )
    return _placeholders(grads, x)


@_backward_op.register_fake
def _backward_fake(grad_y, x, weight, output_mask):
    grads = (
        grad_y.new_empty(grad_y.shape) if output_mask[0] else None,
        torch.empty_like(weight) if output_mask[1] else None,
        weight.new_empty(weight.shape[0]) if output_mask[2] else None,
    )
    return _placeholders(grads, x)


def _placeholders(
    grads: tuple[torch.Tensor | None, ...], like: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Gradients not asked for as empty tensors (an operator returns tensors only)."""
    return tuple(like.new_empty(0) if g is None else g for g in grads)


def _setup_context(ctx, inputs, output) -> None:
    x, weight, _bias = inputs
    ctx.save_for_backward(x, weight)


def _backward(ctx, grad_y):
    x, weight = ctx.saved_tensors
    wanted = list(ctx.needs_input_grad)  # eager autograd skips the others too (a frozen weight)
    grads = _backward_op(grad_y, x, weight, wanted)
    return tuple(g if need else None for g, need in zip(grads, wanted, strict=True))


_forward_op.register_autograd(_backward, setup_context=_setup_context)


def depthwise_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Depthwise 3×3 convolution (padding 1) of a channels-last map, as one operator.

    The same values as ``conv2d(x as NCHW, weight, bias, padding=1, groups=C)``, forward and
    backward, autocast included; meant for code ``torch.compile`` traces (eager code calls the
    convolution directly).

    Args:
        x: ``(B, H, W, C)``.
        weight: ``(C, 1, 3, 3)``.
        bias: ``(C,)``.

    Returns:
        ``(B, H, W, C)``, contiguous.
    """
    device = x.device.type
    if torch.is_autocast_enabled(device):
        # What autocast does to a convolution (the operator itself has no autocast rule): floating
        # tensors other than float64 are cast to the autocast dtype.
        dtype = torch.get_autocast_dtype(device)
        x, weight, bias = (
            t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t
            for t in (x, weight, bias)
        )
    return _forward_op(x, weight, bias)
