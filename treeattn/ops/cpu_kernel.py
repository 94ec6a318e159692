"""Build and load treeattn's C++ CPU attention kernel on first use (cached), or say why not.

The source, ``treeattn/ops/csrc/biased_attention.cpp``, is plain C++ with a C interface (no
PyTorch headers: it compiles in seconds). :func:`load_cpu_kernel` builds it with
:func:`torch.utils.cpp_extension.load` the first time it is called in a process — never at import —
into ``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``), where later processes find it
built (PyTorch rebuilds it when the source changes), and wraps it as :class:`CpuKernel`. It is
compiled for the host CPU (``-march=native``); the library's name carries a tag of the CPU's
instruction-set flags, so machines of different CPUs that share a home directory never load each
other's build. Without a C++ compiler or ninja, or with ``TREEATTN_CPU_KERNEL=0``, it returns
``None`` and the callers use their PyTorch path; the reason is logged once.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
from pathlib import Path

import torch

__all__ = ["CpuKernel", "heads_inner", "load_cpu_kernel"]

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "csrc" / "biased_attention.cpp"
# Tried in order: the host's full instruction set, then a portable build, then without OpenMP
# (the kernel then runs on one thread).
_FLAG_SETS = (
    ["-O3", "-march=native", "-ffp-contract=fast", "-fopenmp"],
    ["-O3", "-ffp-contract=fast", "-fopenmp"],
    ["-O3", "-ffp-contract=fast"],
)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}

_P = ctypes.c_void_p
_FORWARD_ARGS = [_P] * 8 + [ctypes.c_double, _P, _P, _P, ctypes.c_int]
_BACKWARD_ARGS = [_P] * 13 + [ctypes.c_double, *[_P] * 7, ctypes.c_int]


def heads_inner(shape: tuple[int, ...] | torch.Size, like: torch.Tensor) -> torch.Tensor:
    """An empty ``(N, heads, T, D)`` tensor laid out as ``(N, T, heads, D)`` — the layout of
    heads split from a projection's channels, so merging them back (``n h t d -> n t (h d)``) is a
    view, not a copy."""
    n, heads, tokens, width = shape
    return like.new_empty((n, tokens, heads, width)).transpose(1, 2)


def _sizes(*values: int) -> ctypes.Array:
    return (ctypes.c_int64 * len(values))(*values)


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


class CpuKernel:
    """The compiled kernel: :meth:`forward` and :meth:`backward` on float32/float64 CPU tensors.

    Args:
        path: The built shared library.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        library = ctypes.CDLL(path)
        self._forward, self._backward = {}, {}
        for dtype, suffix in _SUFFIX.items():
            forward = getattr(library, f"treeattn_attention_forward_{suffix}")
            backward = getattr(library, f"treeattn_attention_backward_{suffix}")
            forward.argtypes, forward.restype = _FORWARD_ARGS, ctypes.c_int
            backward.argtypes, backward.restype = _BACKWARD_ARGS, ctypes.c_int
            self._forward[dtype], self._backward[dtype] = forward, backward

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``out`` ``(N, heads, T, Dv)`` (laid out by :func:`heads_inner`) and the rows'
        log-sum-exp ``(N, heads, T)``."""
        _check(q, k, v, bias)
        n, heads, tokens, _ = q.shape
        bias = bias.contiguous()
        out = heads_inner((n, heads, tokens, v.shape[-1]), v)
        lse = q.new_zeros((n, heads, tokens))
        if out.numel():  # (nothing to attend with no tokens or zero-width values)
            status = self._forward[q.dtype](
                _sizes(n, heads, tokens, q.shape[-1], v.shape[-1]),
                *(x for t in (q, k, v) for x in (_ptr(t), _sizes(*t.stride()))),
                _ptr(bias),
                scale,
                _ptr(out),
                _sizes(*out.stride()),
                _ptr(lse),
                torch.get_num_threads(),
            )
            _raise_on(status)
        return out, lse

    def backward(
        self,
        grad_out: torch.Tensor,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor,
        out: torch.Tensor,
        lse: torch.Tensor,
        scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients of ``q, k, v`` (laid out by :func:`heads_inner`) and of the bias (summed over
        windows, contiguous)."""
        _check(q, k, v, bias)
        if grad_out.shape != out.shape or out.shape != v.shape:
            raise ValueError(f"grad_out {grad_out.shape} and out {out.shape} must be v's shape")
        n, heads, tokens, _ = q.shape
        bias, lse = bias.contiguous(), lse.contiguous()
        grads = [heads_inner(t.shape, t).zero_() for t in (q, k, v)] + [torch.zeros_like(bias)]
        if out.numel():  # (else every gradient is zero)
            status = self._backward[q.dtype](
                _sizes(n, heads, tokens, q.shape[-1], v.shape[-1]),
                *(x for t in (grad_out, q, k, v) for x in (_ptr(t), _sizes(*t.stride()))),
                _ptr(bias),
                _ptr(out),
                _sizes(*out.stride()),
                _ptr(lse),
                scale,
                *(x for g in grads[:3] for x in (_ptr(g), _sizes(*g.stride()))),
                _ptr(grads[3]),
                torch.get_num_threads(),
            )
            _raise_on(status)
        return tuple(grads)


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> None:
    if q.dim() != 4 or q.shape != k.shape or v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            f"q, k must be one (N, heads, T, Dqk) shape and v (N, heads, T, Dv); got q "
            f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    tokens = q.shape[2]
    if tuple(bias.shape) != (1, q.shape[1], tokens, tokens):
        raise ValueError(f"bias must be (1, heads, T, T) = {(1, q.shape[1], tokens, tokens)}")
    for t in (q, k, v, bias):
        if t.device.type != "cpu" or t.dtype != q.dtype or q.dtype not in _SUFFIX:
            raise TypeError(
                "the C++ attention kernel takes CPU tensors of one dtype, float32 or float64; "
                f"got {[(str(x.device), x.dtype) for x in (q, k, v, bias)]}"
            )


def _raise_on(status: int) -> None:
    if status:
        raise MemoryError("the C++ attention kernel could not allocate its buffers")


def _cpu_tag() -> str:
    """A short hash of the CPU's architecture and instruction-set flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    text = f"{platform.machine()}|{platform.processor()}|{flags}"
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _build(flags: list[str], name: str) -> str:
    from torch.utils import cpp_extension

    link = ["-fopenmp"] if "-fopenmp" in flags else []
    return cpp_extension.load(
        name=name,
        sources=[str(SOURCE)],
        extra_cflags=flags,
        extra_ldflags=link,
        is_python_module=False,
        verbose=False,
    )


@functools.cache
def load_cpu_kernel() -> CpuKernel | None:
    """The compiled kernel, built on the first call in a process (then cached on disk).

    Returns:
        A :class:`CpuKernel`, or ``None`` when it cannot be built here (no compiler, no ninja,
        ``TREEATTN_CPU_KERNEL=0``); one warning says why, and the answer is kept for the process.
    """
    if os.environ.get("TREEATTN_CPU_KERNEL", "1") == "0":
        logger.info("TREEATTN_CPU_KERNEL=0: the C++ attention kernel is off")
        return None
    errors = []
    for index, flags in enumerate(_FLAG_SETS):
        name = f"treeattn_attention_{_cpu_tag()}_{index}"
        logger.info("loading the C++ attention kernel %s (built once, then cached)", name)
        try:
            return CpuKernel(_build(flags, name))
        except Exception as err:  # a compiler error, no compiler, no ninja
            last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
            errors.append(f"[{' '.join(flags)}] {last[0]}")
    logger.warning(
        "the C++ attention kernel could not be built (%s); treeattn uses its PyTorch path. "
        "Install a C++ compiler and ninja to get it, or set TREEATTN_CPU_KERNEL=0 to skip it.",
        "; ".join(errors),
    )
    return None
