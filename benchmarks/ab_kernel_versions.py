"""A/B in one process: this checkout's C++ attention kernel against another checkout's.

Builds ``biased_attention.cpp`` (with its ``vec_math.h``) of an older checkout — e.g. ``git worktree
add --detach ../old HEAD~1`` — with the flags this checkout uses, loads both libraries and times the
kernel alone, forward and backward, on the layers' shapes: a 64² map of 180 channels (``--batch``:
several, e.g. 8 as the recipes train) cut into windows of 16, 64 and 256 tokens, 6 heads, q/k 15 and
v 30 wide, as strided views of one projection (as the layers call it). Both run through this
checkout's Python wrapper (:class:`treeattn.ops.cpu_kernel.CpuKernel`), so only the C++ differs. One
thread: CPU time of the thread; more: wall time. Each comparison reports the ratio of the medians
and the quartiles of the per-round ratio new / old (the two runs of a round are neighbours in time,
so a drift of the machine's speed cancels in it). Every mode keeps freed memory in the process, as
the recipes run (:func:`treeattn.allocator.keep_freed_memory`): the outputs' pages are not faulted
in at each call. Writes ``benchmarks/results/ab_kernel_versions[_<TAG>]_t<THREADS>.json``.

With ``--layers``, it instead builds both checkouts' whole library (the attention kernel and the
gate kernels) and times ``HiIRLayer(180, 6, (16, 64))`` and ``SwinLayer(180, 6, 8)`` fwd + bwd on
a 64² map (``--sizes`` for others) with each build in turn, in one process: what a kernel change
does to each layer's training step and to their ratio.
``--models`` adds registered models' training step (a batch of 8 crops of 64², as
``recipes/denoise.py --preset cpu_gray`` trains), e.g. the CPU gray denoisers.
Writes ``ab_kernel_versions_layers[_<TAG>]_t<THREADS>.json``.

With ``--gate``, it builds both whole libraries too and times the gate kernel alone instead: the
depthwise convolution and gated GELU of the L3 feed-forward, forward and backward, on the hidden
maps of a 180-channel layer (a 64² map of 360 channels). Writes
``ab_kernel_versions_gate[_<TAG>]_t<THREADS>.json``.

Usage::

    python benchmarks/ab_kernel_versions.py --old-src ../old/treeattn/ops/csrc [--threads 1]
    python benchmarks/ab_kernel_versions.py --old-src ../old/treeattn/ops/csrc --layers [--sizes 64]
        [--models hiir_unet_tiny_dn_gray hiir_unet_mid_dn_gray]
    python benchmarks/ab_kernel_versions.py --old-src ../old/treeattn/ops/csrc --gate
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from benchlib import abba_times, machine_meta, paired_ratios, save_results
from einops import rearrange

import treeattn.ops.cpu_kernel as cpu_kernel
from treeattn.allocator import keep_freed_memory
from treeattn.layers import HiIRLayer, SwinLayer
from treeattn.models import create_model, list_models


def attention_only(path: str) -> cpu_kernel.CpuKernel:
    """A :class:`CpuKernel` over a library that may predate the other kernels: only its
    attention entries are bound (the benchmark calls nothing else)."""
    kernel = object.__new__(cpu_kernel.CpuKernel)
    kernel.path, kernel._forward, kernel._backward = path, {}, {}
    library = ctypes.CDLL(path)
    for table, name, argtypes in (
        (kernel._forward, "attention_forward", cpu_kernel._FORWARD_ARGS),
        (kernel._backward, "attention_backward", cpu_kernel._BACKWARD_ARGS),
    ):
        for dtype, suffix in cpu_kernel._SUFFIX.items():
            function = getattr(library, f"treeattn_{name}_{suffix}")
            function.argtypes, function.restype = argtypes, ctypes.c_int
            table[dtype] = function
    return kernel


def build_library(csrc: Path, label: str, names: tuple[str, ...]) -> str:
    """Compile ``names`` (sources in ``csrc``, with its ``vec_math.h``) into one library, with the
    flags :func:`treeattn.ops.cpu_kernel.load_cpu_kernel` uses; returns its path."""
    from torch.utils import cpp_extension

    sources = [csrc / name for name in (*names, "vec_math.h")]
    missing = [str(path) for path in sources if not path.is_file()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not found: --old-src must be a csrc/ folder")
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sources)).hexdigest()[:8]
    work = Path(tempfile.mkdtemp(prefix=f"treeattn_{label}_"))
    for path in sources:
        shutil.copy(path, work / path.name)
    return cpp_extension.load(
        name=f"treeattn_ab_{label}_{len(names)}_{digest}",
        sources=[str(work / name) for name in names],
        extra_cflags=cpu_kernel._FLAG_SETS[0],
        extra_ldflags=["-fopenmp"],
        is_python_module=False,
        verbose=False,
    )


def build(csrc: Path, label: str) -> cpu_kernel.CpuKernel:
    """``csrc``'s attention kernel, built like :func:`treeattn.ops.cpu_kernel.load_cpu_kernel`."""
    return attention_only(build_library(csrc, label, ("biased_attention.cpp",)))


def kernel_runs(kernels: dict, tokens: int, batch: int = 1) -> dict:
    """Forward and backward of each kernel on the windows of ``tokens`` tokens of ``batch`` 64²
    maps."""
    torch.manual_seed(0)
    qkv = torch.randn(batch * 4096 // tokens, tokens, 360)
    q, k, v = (rearrange(t, "n t (h d) -> n h t d", h=6) for t in qkv.split((90, 90, 180), -1))
    bias = torch.randn(1, 6, tokens, tokens)
    out, lse = kernels["new"].forward(q, k, v, bias, 15**-0.5)
    grad = torch.randn_like(out)
    runs = {}
    for name, kernel in kernels.items():
        runs[f"{name} fwd"] = lambda kernel=kernel: kernel.forward(q, k, v, bias, 15**-0.5)
        runs[f"{name} bwd"] = lambda kernel=kernel: kernel.backward(
            grad, q, k, v, bias, out, lse, 15**-0.5
        )
    return runs


def layer_runs(libraries: dict[str, str], size: int, models: tuple[str, ...] = ()) -> dict:
    """fwd + bwd of both layers on a ``size``² map of 180 channels with each library in turn, and
    of each of ``models`` on a batch of 8 images of 64² (once per call, whatever ``size``).

    The layers call the kernels through the process's :class:`CpuKernel`; each run first points
    its entries at its library (the object's state swapped, so every caller sees the swap).
    """
    live = cpu_kernel.load_cpu_kernel()
    if live is None:
        raise SystemExit("the C++ kernels cannot be built here (see the warning above)")
    states = {name: vars(cpu_kernel.CpuKernel(path)) for name, path in libraries.items()}
    torch.manual_seed(0)
    x = torch.randn(1, size, size, 180)
    nets = {
        "HiIR": (HiIRLayer(180, 6, (16, 64), data_format="BHWC"), x),
        "Swin": (SwinLayer(180, 6, 8, data_format="BHWC"), x),
    }
    for name in models:
        model = create_model(name)
        nets[name] = (model, torch.randn(8, model.config.in_chans, 64, 64))

    def run(library: str, net: torch.nn.Module, inputs: torch.Tensor) -> None:
        vars(live).update(states[library])
        net(inputs).square().mean().backward()
        net.zero_grad(set_to_none=True)

    return {
        f"{library} {name}": partial(run, library, *net)
        for library in libraries
        for name, net in nets.items()
    }


def whole_libraries(old_src: Path) -> dict[str, str]:
    """Both checkouts' whole library (every source this checkout builds), old and new."""
    names = tuple(path.name for path in cpu_kernel.SOURCES)
    return {
        "old": build_library(old_src, "old", names),
        "new": build_library(Path(cpu_kernel.__file__).parent / "csrc", "new", names),
    }


def gate_runs(libraries: dict[str, str], size: int = 64, channels: int = 360) -> dict:
    """Forward and backward of each library's depthwise-conv gate on ``size``² maps."""
    kernels = {name: cpu_kernel.CpuKernel(path) for name, path in libraries.items()}
    gen = torch.Generator().manual_seed(0)
    value, gate, grad = (torch.randn(1, size, size, channels, generator=gen) for _ in range(3))
    weight = 0.3 * torch.randn(channels, 1, 3, 3, generator=gen)
    bias = 0.1 * torch.randn(channels, generator=gen)
    runs = {}
    for name, kernel in kernels.items():
        runs[f"{name} fwd"] = partial(kernel.dwconv_gate_forward, value, gate, weight, bias)
        runs[f"{name} bwd"] = partial(kernel.dwconv_gate_backward, grad, value, gate, weight, bias)
    return runs


def ab_times(runs: dict, *, repeats: int, clock) -> dict:
    """Median seconds of each run (one untimed run of each first, then ``repeats`` ABBA rounds),
    and for each pair ``old X`` / ``new X`` the quartiles of the per-round ratio new / old under
    ``new/old X`` — which a drift of the machine's speed between rounds does not move."""
    for run in runs.values():
        run()
    times = abba_times(runs, repeats=repeats, clock=clock)
    result: dict = {name: statistics.median(t) for name, t in times.items()}
    for name in times:
        if name.startswith("new "):
            part = name.removeprefix("new ")
            result[f"new/old {part}"] = paired_ratios(times[name], times[f"old {part}"])
    return result


def change(med: dict, part: str, digits: int = 2) -> str:
    """``old … → new … ms (ratio of medians; per round median, quartiles)`` for one part."""
    old, new, rounds = med[f"old {part}"], med[f"new {part}"], med[f"new/old {part}"]
    return (
        f"old {old * 1e3:.{digits}f} → new {new * 1e3:.{digits}f} ms ({new / old:.3f}; per round "
        f"{rounds['median']:.3f}, {rounds['q1']:.3f}–{rounds['q3']:.3f})"
    )


def fwd_bwd_line(med: dict) -> str:
    """``fwd old … → new … ms (…), bwd …`` from one A/B."""
    return ", ".join(f"{part} {change(med, part)}" for part in ("fwd", "bwd"))


def compare_layers(args: argparse.Namespace, clock) -> dict:
    """The --layers mode: both layers' training step with each checkout's whole library."""
    libraries = whole_libraries(args.old_src)
    results = {}
    for index, size in enumerate(args.sizes):
        models = tuple(args.models) if index == 0 else ()
        runs = layer_runs(libraries, size, models)
        med = ab_times(runs, repeats=args.repeats, clock=clock)
        results[f"{size}x{size}"] = med
        parts = [f"{name} {change(med, name, 1)}" for name in ("HiIR", "Swin", *models)]
        old, new = (med[f"{lib} HiIR"] / med[f"{lib} Swin"] for lib in libraries)
        print(f"{size}²: " + ", ".join(parts) + f"; HiIR / Swin old {old:.3f} → new {new:.3f}")
    return results


def compare_gate(args: argparse.Namespace, clock) -> dict:
    """The --gate mode: the gate kernel alone with each checkout's whole library."""
    med = ab_times(gate_runs(whole_libraries(args.old_src)), repeats=args.repeats, clock=clock)
    print("depthwise-conv gate, 64² × 360: " + fwd_bwd_line(med))
    return {"64x64 map, 360 channels": med}


def compare_kernels(args: argparse.Namespace, clock) -> dict:
    """The default mode: each checkout's attention kernel alone at 16, 64 and 256 tokens, on
    ``args.batch`` maps of 64²."""
    kernels = {
        "old": build(args.old_src, "old"),
        "new": build(Path(cpu_kernel.__file__).parent / "csrc", "new"),
    }
    results = {}
    for tokens in (16, 64, 256):
        windows = args.batch * 4096 // tokens
        med = ab_times(kernel_runs(kernels, tokens, args.batch), repeats=args.repeats, clock=clock)
        results[f"{windows} windows x {tokens} tokens"] = med
        print(f"{windows} windows × {tokens} tokens: " + fwd_bwd_line(med))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", type=Path, required=True, help="another checkout's csrc/")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--layers", action="store_true", help="time both layers' training step with each build"
    )
    modes.add_argument(
        "--gate", action="store_true", help="time the depthwise-conv gate kernel with each build"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64], help="with --layers")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="kernel mode: windows of this many 64² maps (8: a training batch of the recipes)",
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="NAME",
        help="with --layers: registered models whose training step is timed too",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="added to the JSON's name (one A/B does not replace another)",
    )
    args = parser.parse_args()
    if args.models and not args.layers:
        parser.error("--models times models with --layers only")
    if args.batch < 1 or (args.batch != 1 and (args.layers or args.gate)):
        parser.error("--batch is a positive number of 64² maps, for the kernel mode only")
    unknown = [name for name in args.models if name not in list_models()]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; see treeattn.models.list_models()")
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    load_before = os.getloadavg()[0]
    # freed memory kept, as the recipes run: the outputs' pages are not faulted in at every call
    extra = {"kept_freed_memory": keep_freed_memory()}
    if args.layers:
        mode, results = "_layers", compare_layers(args, clock)
    elif args.gate:
        mode, results = "_gate", compare_gate(args, clock)
    else:
        mode, results = "", compare_kernels(args, clock)
    meta = {
        **machine_meta(load_before),
        "repeats": args.repeats,
        "old_src": str(args.old_src),
        **extra,
    }
    tag = f"_{args.tag}" if args.tag else ""
    out = f"ab_kernel_versions{mode}{tag}_t{args.threads}"
    save_results(Path(__file__).parent / "results", out, meta, results)


if __name__ == "__main__":
    main()
