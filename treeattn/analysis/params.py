"""Parameter counts: total, per component kind, and per top-level module.

Component kinds (each parameter goes to the innermost enclosing module that has a kind):
``attention`` (q/k/v and output projections, cosine logit scales), ``position bias``, ``FFN``,
``norm`` (LayerNorms), ``stage end`` (the blocks closing each stage and the body), and ``convs``
(everything else: embedding, down/up-sampling, upsampler, output).
"""

from __future__ import annotations

from torch import nn

from treeattn.layers.attention import LevelAttention, LevelStackAttention, TreeAttention
from treeattn.layers.ffn import FFNS
from treeattn.layers.pos_bias import POS_BIAS
from treeattn.models.stage import Stage

__all__ = ["COMPONENT_KINDS", "count_parameters", "parameters_by_child", "parameters_by_component"]

COMPONENT_KINDS: dict[str, tuple[type[nn.Module], ...]] = {
    "attention": (TreeAttention, LevelAttention, LevelStackAttention),
    "position bias": tuple(POS_BIAS.values()),
    "FFN": tuple(FFNS.values()),
    "norm": (nn.LayerNorm,),
}
_OTHER = "convs"
_STAGE_END = "stage end"


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def _kind(module: nn.Module, stage_ends: set[int]) -> str | None:
    if id(module) in stage_ends:
        return _STAGE_END
    for kind, classes in COMPONENT_KINDS.items():
        if isinstance(module, classes):
            return kind
    return None


def parameters_by_component(model: nn.Module) -> dict[str, int]:
    """Parameter elements per component kind, in the order of :data:`COMPONENT_KINDS`.

    Kinds without parameters are left out.
    """
    stage_ends = {id(m.end) for m in model.modules() if isinstance(m, Stage)}
    body_end = getattr(model, "body_end", None)
    if isinstance(body_end, nn.Module):
        stage_ends.add(id(body_end))
    totals = dict.fromkeys([*COMPONENT_KINDS, _STAGE_END, _OTHER], 0)
    seen: set[int] = set()

    def visit(module: nn.Module, kind: str) -> None:
        kind = _kind(module, stage_ends) or kind
        for param in module.parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                totals[kind] += param.numel()
        for child in module.children():
            visit(child, kind)

    visit(model, _OTHER)
    return {kind: count for kind, count in totals.items() if count}


def parameters_by_child(model: nn.Module) -> dict[str, int]:
    """Parameter elements of each top-level child module (e.g. ``stages``, ``upsampler``)."""
    return {
        name: count
        for name, child in model.named_children()
        if (count := sum(p.numel() for p in child.parameters()))
    }
