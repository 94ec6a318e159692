"""A/B in one process: which kernel the ``auto`` backend gives small windows in CPU training.

Times (medians of interleaved runs; thread CPU time at one thread, wall clock otherwise) the
attention alone, fwd + bwd with a learnable bias, through explicit math and through treeattn's C++
kernel at 4, 16, 32 and 64 tokens (views of one projection, heads side by side, as the layers give
them); then training steps of the models users train on a CPU and of ``SwinLayer(180, 6, 8)``
(64-token windows) and ``HiIRLayer(180, 6, (16, 64))`` (16- and 256-token windows) under three
rules: explicit math up to 64 tokens (the rule before the C++ kernel), explicit math up to 16
tokens (the rule before the kernel's small windows beat math), and the current one (explicit math
only where ``fused`` would run SDPA).

Writes ``benchmarks/results/ab_small_windows_t<THREADS>.json``.

Usage: python benchmarks/ab_small_windows.py [--threads 1] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
from ab_cpu_kernel import attention_runs
from benchlib import abba_medians, machine_meta, save_results

import treeattn.ops.attention as attention
from treeattn import HiIRLayer, SwinLayer
from treeattn.models import create_model
from treeattn.ops.cpu_kernel import kernel_available


def math_up_to(tokens: int) -> Callable[[torch.Tensor, torch.Tensor | None], bool]:
    """A previous rule: explicit math in CPU windows of up to ``tokens`` tokens whatever ``fused``
    would run, the current rule above."""
    current = attention._small_cpu_window

    def small(q: torch.Tensor, bias: torch.Tensor | None) -> bool:
        return (q.device.type == "cpu" and q.shape[-2] <= tokens) or current(q, bias)

    return small


@contextmanager
def small_window_rule(rule: Callable[[torch.Tensor, torch.Tensor | None], bool]):
    """Run ``auto`` with ``rule`` deciding which windows take explicit math."""
    current = attention._small_cpu_window
    attention._small_cpu_window = rule
    try:
        yield
    finally:
        attention._small_cpu_window = current


def step_runs() -> dict[str, Callable[[], None]]:
    """One training step (AdamW) of each CPU denoiser on its training batch, and a Swin layer's
    fwd + bwd at 64²."""
    torch.manual_seed(0)
    steps = {}
    for name, shape in [
        ("hiir_unet_tiny_dn_gray", (8, 1, 64, 64)),
        ("hiir_unet_mid_dn_gray", (4, 1, 128, 128)),
    ]:
        model = create_model(name)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        x = torch.randn(shape)

        def step(model=model, optimizer=optimizer, x=x) -> None:
            optimizer.zero_grad()
            (model(x) - x).abs().mean().backward()
            optimizer.step()

        steps[name] = step
    x = torch.randn(1, 180, 64, 64)
    for name, layer in [
        ("SwinLayer(180, 6, 8) 64²", SwinLayer(180, 6, 8)),
        ("HiIRLayer(180, 6, (16, 64)) 64²", HiIRLayer(180, 6, (16, 64))),
    ]:
        steps[name] = lambda layer=layer: layer(x).sum().backward()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if os.environ.get("TREEATTN_ATTN_BACKEND"):
        raise SystemExit("unset TREEATTN_ATTN_BACKEND: it overrides the rule this script compares")
    if not kernel_available():
        raise SystemExit("the C++ attention kernel cannot be built here: nothing to compare")
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    load_before = os.getloadavg()[0]
    results: dict[str, dict] = {}
    print(f"threads={args.threads}; medians of {args.repeats} interleaved runs, ms")
    for windows, tokens in [(1024, 4), (256, 16), (128, 32), (64, 64)]:
        kernels = {"math": attention.attention_math, "kernel": attention.attention_fused}
        runs = attention_runs(windows, tokens, kernels, projection=True)
        t = abba_medians(runs, repeats=args.repeats, clock=clock)
        results[f"attention {windows} windows x {tokens} tokens"] = t
        print(
            f"attention fwd+bwd, {windows} windows × {tokens} tokens: math {t['math'] * 1e3:.2f}, "
            f"kernel {t['kernel'] * 1e3:.2f}, kernel / math {t['kernel'] / t['math']:.2f}"
        )
    rules = {
        f"math_up_to_{attention.SMALL_WINDOW_TOKENS}": math_up_to(attention.SMALL_WINDOW_TOKENS),
        "math_up_to_16": math_up_to(16),
        "current": attention._small_cpu_window,
    }
    for name, step in step_runs().items():

        def under(rule, step=step) -> Callable[[], None]:
            def run() -> None:
                with small_window_rule(rule):
                    step()

            return run

        t = abba_medians(
            {key: under(rule) for key, rule in rules.items()}, repeats=args.repeats, clock=clock
        )
        results[name] = t
        old, previous, current = (t[key] for key in rules)
        print(
            f"{name}: math up to {attention.SMALL_WINDOW_TOKENS} tokens {old * 1e3:.1f}, up to 16 "
            f"{previous * 1e3:.1f}, current (math only where SDPA would run) {current * 1e3:.1f}; "
            f"current / up to 16 {current / previous:.3f}, current / up to "
            f"{attention.SMALL_WINDOW_TOKENS} {current / old:.3f}"
        )
    meta = {**machine_meta(load_before), "repeats": args.repeats}
    save_results(
        Path(__file__).parent / "results", f"ab_small_windows_t{args.threads}", meta, results
    )


if __name__ == "__main__":
    main()
