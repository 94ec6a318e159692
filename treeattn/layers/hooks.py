"""Whether calling a module runs hooks: the check before a faster path stands in for its call."""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _module_hooks

__all__ = ["runs_hooks"]


def runs_hooks(module: nn.Module) -> bool:
    """Whether calling ``module`` runs hooks — its own (forward, backward) or global module hooks —
    which an operator that stands in for the call would skip."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
        or _module_hooks._global_forward_hooks
        or _module_hooks._global_forward_pre_hooks
        or _module_hooks._global_backward_hooks
        or _module_hooks._global_backward_pre_hooks
    )
