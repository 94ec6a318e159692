"""The treeattn command line: model info, model list, restoring images, export.

``treeattn info MODEL [--size H W]``, ``treeattn list [PATTERN] [--pretrained]``,
``treeattn restore MODEL INPUT ... --output DIR`` (see :mod:`treeattn.inference`) and
``treeattn export MODEL --format onnx|pt2 --size H W``.

``info`` prints a model's metadata (for a saved model folder also how it was trained), parameter
counts (total, per component kind, per top-level module), its analytic receptive field and, for
an input size, its MACs; ``--memory`` adds the peak activation memory of a forward pass and
``--erf`` the gradient-based effective receptive field of the centre pixel (both run the model
on the CPU). ``list --pretrained`` lists the shipped trained models with their benchmark
numbers. Also runs as ``python -m treeattn.cli``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from treeattn.analysis import (
    analytic_receptive_field,
    count_macs,
    count_parameters,
    effective_receptive_field,
    parameters_by_child,
    parameters_by_component,
    peak_activation_memory,
)
from treeattn.inference.commands import add_export_command, add_restore_command
from treeattn.models import (
    build_model,
    create_model,
    list_models,
    list_pretrained,
    load_model,
    pretrained_info,
)

__all__ = ["build_parser", "main"]

Rows = list[tuple[str, str]]


def _si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _share_rows(counts: dict[str, int], total: int) -> Rows:
    return [(f"  {name}", f"{_si(n):>10}  {100 * n / total:5.1f}%") for name, n in counts.items()]


def _print_table(title: str, rows: Rows) -> None:
    width = max(len(key) for key, _ in rows)
    print(title)
    print("-" * max(len(title), width + 24))
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print()


def _erf_summary(erf: torch.Tensor, *, threshold: float) -> str:
    above = erf >= threshold
    rows, cols = above.any(dim=1).nonzero(), above.any(dim=0).nonzero()
    height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    return (
        f"{int(above.sum()):,} px ≥ {threshold:.0%} of the peak gradient, bounding box "
        f"{height} × {width} (randomly initialised weights)"
    )


def _training_rows(model: torch.nn.Module) -> Rows:
    record = model.provenance
    if record is None:
        return [("trained for", "not recorded (saved without a training record)")]
    return record.rows()


def _info(args: argparse.Namespace) -> int:
    # Counting needs shapes only (meta device). The math attention backend multiplies q/k at
    # their true width; the SDPA path zero-pads them to v's head dim, which adds MACs.
    # A path or a shipped name is a trained model (load_model); anything else a registered name.
    trained = Path(args.model).exists() or args.model in list_pretrained()
    saved = load_model(args.model) if trained else None
    if saved is None:
        model = create_model(args.model, device="meta", backend="math")
    else:
        config = dataclasses.replace(saved.config, backend="math")
        model = build_model(config, name=saved.meta.name, device="meta")
    meta = model.meta
    total = count_parameters(model)
    rf_h, rf_w = analytic_receptive_field(model)
    rows: Rows = [
        ("task", meta.task),
        ("scale", f"×{meta.scale}"),
        ("channels", f"{meta.in_chans} → {meta.out_chans}"),
        ("input", f"any size; padded to a multiple of {meta.multiple_of}"),
        (
            "bf16 / fp16",
            f"{'yes' if meta.supports_bf16 else 'no'} / "
            f"{'yes' if meta.supports_fp16 else 'not claimed'}",
        ),
        ("parameters", f"{_si(total)} ({total:,})"),
        ("by component", ""),
        *_share_rows(parameters_by_component(model), total),
        ("by module", ""),
        *_share_rows(parameters_by_child(model), total),
        ("receptive field", f"{rf_h} × {rf_w} input px (analytic, away from borders)"),
        *(_training_rows(saved) if saved is not None else []),
    ]
    _print_table(f"treeattn info {args.model}", rows)
    if args.size is None:
        return 0
    height, width = args.size
    shape = f"{args.batch}×{meta.in_chans}×{height}×{width}"
    macs = count_macs(model, (height, width), in_chans=meta.in_chans, batch=args.batch)
    rows = [
        (
            "MACs",
            f"{_si(macs.total)} ({macs.total:,}) = FLOPs/2 of one forward pass "
            "(torch.utils.flop_counter, math attention)",
        ),
        ("by operator", ""),
        *_share_rows(macs.by_operator, macs.total),
        ("by module", ""),
        *_share_rows(macs.by_module, macs.total),
    ]
    cpu_model = (saved or create_model(args.model).eval()) if args.memory or args.erf else None
    if args.memory:
        for grad, label in ((False, "inference"), (True, "training forward")):
            peak = peak_activation_memory(
                cpu_model, (height, width), in_chans=meta.in_chans, batch=args.batch, grad=grad
            )
            rows.append((f"peak activations ({label})", f"{_si(peak, 'B')} ({peak:,} bytes)"))
    if args.erf:
        erf = effective_receptive_field(cpu_model, (height, width), in_chans=meta.in_chans)
        rows.append(("effective RF (centre pixel)", _erf_summary(erf, threshold=0.01)))
    _print_table(f"input {shape} (float32)", rows)
    return 0


#: The peers a shipped model's benchmark may hold rows of: method → title.
_PEERS = {"bm3d": "BM3D", "dncnn_s25": "DnCNN-S"}


def _pretrained_lines(name: str) -> list[str]:
    info = pretrained_info(name)
    ours, ensemble = info.scores("treeattn"), info.scores("treeattn_x8")
    peers = {title: info.scores(method) for method, title in _PEERS.items()}
    counts = info.image_counts()
    lines = [f"{name}: {info.summary}" if info.summary else name]
    for (test_set, level), (psnr, ssim) in ours.items():
        x8 = ensemble.get((test_set, level))
        also = f", {x8[0]:.2f} dB with --self-ensemble" if x8 else ""
        refs = [
            f"{t} {s[(test_set, level)][0]:.2f} dB"
            for t, s in peers.items()
            if (test_set, level) in s
        ]
        versus = f" ({', '.join(refs)})" if refs else ""
        shown = f"{test_set} ({counts[test_set]} images)" if test_set in counts else test_set
        lines.append(f"  {shown} σ={level:g}: {psnr:.2f} dB / SSIM {ssim:.4f}{also}{versus}")
    return lines


def _list(args: argparse.Namespace) -> int:
    if args.pretrained:
        names = list_pretrained(args.pattern)
        lines = [line for name in names for line in _pretrained_lines(name)]
    else:
        names = lines = list_models(args.pattern)
    if not names:
        kind = "shipped pretrained model" if args.pretrained else "model"
        print(f"no {kind} matches {args.pattern!r}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``treeattn`` argument parser."""
    parser = argparse.ArgumentParser(prog="treeattn", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="parameters, MACs, memory, receptive field")
    info.add_argument(
        "model", help="registered model name (see `treeattn list`) or a saved model folder"
    )
    info.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="input size")
    info.add_argument("--batch", type=int, default=1, help="batch size for MACs and memory")
    info.add_argument(
        "--memory", action="store_true", help="also measure peak activation memory (runs on CPU)"
    )
    info.add_argument(
        "--erf",
        action="store_true",
        help="also measure the gradient-based effective receptive field (runs on CPU)",
    )
    info.set_defaults(run=_info)
    listing = commands.add_parser("list", help="list registered (or shipped pretrained) models")
    listing.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'hiir_b_*'")
    listing.add_argument(
        "--pretrained",
        action="store_true",
        help="list the shipped pretrained models with their benchmark numbers",
    )
    listing.set_defaults(run=_list)
    add_restore_command(commands)
    add_export_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "info" and args.size is not None and min(*args.size, args.batch) < 1:
        print(f"--size {args.size} and --batch {args.batch} must be positive", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"treeattn: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
