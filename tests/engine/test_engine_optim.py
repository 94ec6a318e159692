"""Optimisers and warm-up + cosine / multistep schedules."""

from __future__ import annotations

import itertools

import pytest
import torch

from treeattn.engine.optim import build_optimizer, build_scheduler


def _lrs(name: str, steps: int, **kwargs) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer("adamw", [param], lr=1.0, weight_decay=0.0, betas=(0.9, 0.99))
    sched = build_scheduler(opt, name, max_steps=steps, **kwargs)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_linear_warmup_then_cosine_to_floor() -> None:
    lrs = _lrs("cosine", 20, warmup_steps=4, min_lr_ratio=0.1)
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))
    tail = _lrs("cosine", 20, warmup_steps=0, min_lr_ratio=0.1)
    assert tail[-1] > 0.1 and tail[10] == pytest.approx(0.55)


def test_multistep_halves_at_milestones() -> None:
    lrs = _lrs("multistep", 10, warmup_steps=0, milestones=(0.5, 0.8), gamma=0.5)
    assert lrs == pytest.approx([1.0] * 5 + [0.5] * 3 + [0.25] * 2)


def test_bad_names_and_lengths() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer("sgd", [param], lr=1.0, weight_decay=0.0, betas=(0.9, 0.99))
    opt = build_optimizer("adam", [param], lr=1.0, weight_decay=0.0, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="unknown scheduler"):
        build_scheduler(opt, "linear", warmup_steps=0, max_steps=10)
    with pytest.raises(ValueError, match="milestones"):
        build_scheduler(opt, "multistep", warmup_steps=0, max_steps=10, milestones=(5,))
