""" "Did you mean": close model names among the registered architectures and the shipped models.

One helper for every message about an unknown model name (``create_model``, ``treeattn info``,
``treeattn restore``, ``load_model``), so that a typo of a shipped trained model's name suggests
that model, not only untrained architectures, and says which kind each suggestion is.

Example:
    >>> did_you_mean("hiir_dn_gray_cpuu", registered=["hiir_unet_tiny"],
    ...              shipped=["hiir_dn_gray_cpu"])
    "did you mean 'hiir_dn_gray_cpu' (shipped, trained)?"
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

__all__ = ["did_you_mean"]

_SHIPPED_TAG = " (shipped, trained)"


def did_you_mean(
    name: str, *, registered: Collection[str], shipped: Collection[str], limit: int = 4
) -> str:
    """``"did you mean 'a', 'b' (shipped, trained)?"`` for the names closest to ``name``, or ``""``.

    Args:
        name: The unknown name.
        registered: Registered architecture names (``list_models()``).
        shipped: Shipped pretrained model names (``list_pretrained()``); tagged in the hint.
        limit: Most names suggested.
    """
    if not isinstance(name, str):
        return ""
    candidates = sorted(set(registered) | set(shipped))
    close = difflib.get_close_matches(name, candidates, n=limit)
    if not close:
        return ""
    shown = [f"{c!r}{_SHIPPED_TAG if c in shipped else ''}" for c in close]
    return f"did you mean {', '.join(shown)}?"
