"""Weight-initialisation schemes of the Hi-IR paper's scaling study (`docs/layers.md`, "Options").

* ``default`` — Linear weights trunc-normal (std 0.02), zero biases, LayerNorm (1, 0); convs keep
  PyTorch's default.
* ``zero_ln`` — default, then the LayerNorm of every res-post-norm branch set to (0, 0), so each
  layer starts as the identity; needs ``norm="post"``.
* ``residual_rescale`` — default, then every residual branch multiplied by 0.01.
* ``weight_rescale`` — default, then every Linear/Conv weight ×0.1, except position-bias MLPs.
* ``trunc_normal`` — Linear weights trunc-normal with a configurable ``std``, conv weights ×0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from treeattn.layers.pos_bias import ContinuousPositionBias
from treeattn.layers.residual import PostNormResidual, Residual
from treeattn.validate import check_choice, check_float

__all__ = ["INIT_SCHEMES", "check_init_norm", "check_init_std", "init_weights"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def _default(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, Residual):
            m.scale.fill_(1.0)
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _zero_ln(module: nn.Module, std: float) -> None:
    _default(module, std)
    post = [m for m in module.modules() if isinstance(m, PostNormResidual)]
    if not post:
        raise ValueError(
            "init='zero_ln' zeroes the LayerNorm of res-post-norm branches, but this module has "
            "none; build its layers with norm='post'"
        )
    for m in post:
        nn.init.zeros_(m.norm.weight)
        nn.init.zeros_(m.norm.bias)


@torch.no_grad()
def _residual_rescale(module: nn.Module, std: float) -> None:
    _default(module, std)
    for m in module.modules():
        if isinstance(m, Residual):
            m.scale.fill_(0.01)


def _weights_outside_pos_bias(module: nn.Module) -> Iterator[nn.Module]:
    skip = {
        id(p)
        for m in module.modules()
        if isinstance(m, ContinuousPositionBias)
        for p in m.parameters()
    }
    for m in module.modules():
        if isinstance(m, (nn.Linear, *_CONVS)) and id(m.weight) not in skip:
            yield m


@torch.no_grad()
def _weight_rescale(module: nn.Module, std: float) -> None:
    _default(module, std)
    for m in _weights_outside_pos_bias(module):
        m.weight.mul_(0.1)


@torch.no_grad()
def _trunc_normal(module: nn.Module, std: float) -> None:
    _default(module, std)
    for m in module.modules():
        if isinstance(m, _CONVS):
            m.weight.mul_(0.1)


INIT_SCHEMES: dict[str, Callable[[nn.Module, float], None]] = {
    "default": _default,
    "zero_ln": _zero_ln,
    "residual_rescale": _residual_rescale,
    "weight_rescale": _weight_rescale,
    "trunc_normal": _trunc_normal,
}


def init_weights(module: nn.Module, scheme: str = "default", *, std: float = 0.02) -> None:
    """Initialise ``module`` and all its submodules in place with a named scheme.

    Args:
        module: A layer or a whole model.
        scheme: One of ``default``, ``zero_ln``, ``residual_rescale``, ``weight_rescale``,
            ``trunc_normal``.
        std: Standard deviation of the truncated-normal Linear weights.
    """
    check_choice("init", scheme, INIT_SCHEMES)
    INIT_SCHEMES[scheme](module, check_init_std(std))


def check_init_std(std: object, *, name: str = "std") -> float:
    """The standard deviation of the truncated-normal Linear weights: a positive number.

    Args:
        std: The value.
        name: How the caller names it (a model config's field is ``init_std``).

    Raises:
        TypeError: if ``std`` is not a number.
        ValueError: if it is not positive and finite.
    """
    return check_float(name, std, minimum=0.0, open_minimum=True)


# Init schemes that only make sense with one norm placement (the rule lives here only).
_NEEDS_NORM = {"zero_ln": "post"}


def check_init_norm(init: str, norm: str) -> None:
    """Refuse an init scheme that cannot work with the layers' norm placement.

    Args:
        init: Init scheme name.
        norm: Norm placement of the layers (``pre`` or ``post``).

    Raises:
        ValueError: for ``init="zero_ln"`` without ``norm="post"`` (it zeroes the LayerNorm of
            res-post-norm branches, which pre-norm layers do not have).
    """
    needed = _NEEDS_NORM.get(init)
    if needed is not None and norm != needed:
        raise ValueError(
            f"init={init!r} zeroes the LayerNorm of res-post-norm branches: set norm={needed!r} "
            f"(got norm={norm!r})"
        )
