"""Build and load treeattn's C++ CPU kernels on first use (cached), or say why not.

The sources in ``treeattn/ops/csrc/`` — ``biased_attention.cpp`` (window attention with a learnable
shared bias) and ``gated_gelu.cpp`` (the L3 feed-forward's gate, with or without its depthwise
convolution) — are plain C++ with a C interface
(no PyTorch headers: they compile in seconds; ``vec_math.h`` holds their shared vector math and
threading), built into one library. :func:`load_cpu_kernel`
builds it with :func:`torch.utils.cpp_extension.load` the first time it is called in a process —
never at import — into ``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``), where later
processes find it built (PyTorch rebuilds it when a source changes), and wraps it as
:class:`CpuKernel`. It is compiled for the host CPU (``-march=native``); the library's name carries
a tag of the CPU's instruction-set flags, so machines of different CPUs that share a home directory
never load each other's build, and a hash of the sources and header, so an edit of either builds
anew. Without a C++ compiler or ninja, or with ``TREEATTN_CPU_KERNEL=0``,
it returns ``None`` and the callers use their PyTorch path; the reason is logged once.
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

__all__ = [
    "KERNEL_DTYPES",
    "CpuKernel",
    "heads_inner",
    "kernel_available",
    "load_cpu_kernel",
    "under_functorch",
]

logger = logging.getLogger(__name__)

_CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = tuple(_CSRC / name for name in ("biased_attention.cpp", "gated_gelu.cpp"))
# Included by the sources; part of the library's name (see _source_tag), so editing it rebuilds.
HEADERS = (_CSRC / "vec_math.h",)
# Tried in order: the host's full instruction set, then a portable build, then without OpenMP
# (the kernel then runs on one thread).
_FLAG_SETS = (
    ["-O3", "-march=native", "-ffp-contract=fast", "-fopenmp"],
    ["-O3", "-ffp-contract=fast", "-fopenmp"],
    ["-O3", "-ffp-contract=fast"],
)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
# dtypes the C++ kernels compute in; callers take their PyTorch path for others.
KERNEL_DTYPES = tuple(_SUFFIX)

_P = ctypes.c_void_p
_FORWARD_ARGS = [_P] * 8 + [ctypes.c_double, _P, _P, _P, ctypes.c_int]
_BACKWARD_ARGS = [_P] * 13 + [ctypes.c_double, *[_P] * 7, ctypes.c_int]
_GATE_FORWARD_ARGS = [ctypes.c_int64, *[_P] * 3, ctypes.c_int]
_GATE_BACKWARD_ARGS = [ctypes.c_int64, *[_P] * 5, ctypes.c_int]
_DWCONV_GATE_FORWARD_ARGS = [*[_P] * 6, ctypes.c_int]
_DWCONV_GATE_BACKWARD_ARGS = [*[_P] * 10, ctypes.c_int]


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
    """The compiled kernels on float32/float64 CPU tensors: attention (:meth:`forward`,
    :meth:`backward`), the FFN gate (:meth:`gate_forward`, :meth:`gate_backward`) and the gate with
    its depthwise convolution (:meth:`dwconv_gate_forward`, :meth:`dwconv_gate_backward`).

    Args:
        path: The built shared library.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        library = ctypes.CDLL(path)
        self._forward, self._backward, self._gate_forward, self._gate_backward = {}, {}, {}, {}
        self._dwconv_gate_forward, self._dwconv_gate_backward = {}, {}
        entries = (
            (self._forward, "attention_forward", _FORWARD_ARGS),
            (self._backward, "attention_backward", _BACKWARD_ARGS),
            (self._gate_forward, "gated_gelu_forward", _GATE_FORWARD_ARGS),
            (self._gate_backward, "gated_gelu_backward", _GATE_BACKWARD_ARGS),
            (self._dwconv_gate_forward, "dwconv_gate_forward", _DWCONV_GATE_FORWARD_ARGS),
            (self._dwconv_gate_backward, "dwconv_gate_backward", _DWCONV_GATE_BACKWARD_ARGS),
        )
        for dtype, suffix in _SUFFIX.items():
            for table, name, argtypes in entries:
                function = getattr(library, f"treeattn_{name}_{suffix}")
                function.argtypes, function.restype = argtypes, ctypes.c_int
                table[dtype] = function

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
        # The kernel writes every element; with nothing to attend every gradient is zero.
        grads = [heads_inner(t.shape, t) for t in (q, k, v)] + [torch.empty_like(bias)]
        if not out.numel():
            return tuple(g.zero_() for g in grads)
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

    def gate_forward(self, value: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """``value · GELU(gate)`` (exact GELU) of two tensors of one shape."""
        _check_gate(value, gate)
        value, gate = value.contiguous(), gate.contiguous()
        out = torch.empty_like(value)
        status = self._gate_forward[value.dtype](
            value.numel(), _ptr(value), _ptr(gate), _ptr(out), torch.get_num_threads()
        )
        _raise_on(status)
        return out

    def gate_backward(
        self, grad_out: torch.Tensor, value: torch.Tensor, gate: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients of :meth:`gate_forward`'s ``value`` and ``gate``."""
        _check_gate(value, gate)
        _check_gate(grad_out, value)
        grad_out, value, gate = (t.contiguous() for t in (grad_out, value, gate))
        grad_value, grad_gate = torch.empty_like(value), torch.empty_like(value)
        status = self._gate_backward[value.dtype](
            value.numel(),
            *(_ptr(t) for t in (grad_out, value, gate, grad_value, grad_gate)),
            torch.get_num_threads(),
        )
        _raise_on(status)
        return grad_value, grad_gate

    def dwconv_gate_forward(
        self, value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """``value · GELU(conv(gate))`` of ``(B, H, W, C)`` maps, ``conv`` the depthwise 3×3
        convolution (padding 1) with ``weight`` ``(C, 1, 3, 3)`` and ``bias`` ``(C,)``."""
        _check_dwconv_gate(value, gate, weight, bias)
        # (locals: the C call must see the copies alive)
        value, gate, taps, bias = (
            value.contiguous(),
            gate.contiguous(),
            _taps(weight),
            bias.contiguous(),
        )
        out = torch.empty_like(value)
        status = self._dwconv_gate_forward[value.dtype](
            _sizes(*value.shape),
            *(_ptr(t) for t in (value, gate, taps, bias, out)),
            torch.get_num_threads(),
        )
        _raise_on(status)
        return out

    def dwconv_gate_backward(
        self,
        grad_out: torch.Tensor,
        value: torch.Tensor,
        gate: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients of :meth:`dwconv_gate_forward`'s ``value``, ``gate``, ``weight`` (in the
        weight's own layout) and ``bias``."""
        _check_dwconv_gate(value, gate, weight, bias)
        _check_gate(grad_out, value)
        # (locals: the C call must see the copies alive)
        grad_out, value, gate = (t.contiguous() for t in (grad_out, value, gate))
        taps, bias_in = _taps(weight), bias.contiguous()
        grad_value, grad_gate = torch.empty_like(value), torch.empty_like(value)
        # written as (C, 9) (channel c's taps at c·9 … c·9 + 8), returned in the weight's layout
        grad_taps, grad_bias = weight.new_empty(weight.shape), torch.empty_like(bias)
        status = self._dwconv_gate_backward[value.dtype](
            _sizes(*value.shape),
            *(_ptr(t) for t in (grad_out, value, gate, taps, bias_in)),
            *(_ptr(t) for t in (grad_value, grad_gate, grad_taps, grad_bias)),
            torch.get_num_threads(),
        )
        _raise_on(status)
        if grad_taps.stride() != weight.stride():  # e.g. channels-last: a copy of 9·C values
            grad_taps = torch.empty_like(weight).copy_(grad_taps)
        return grad_value, grad_gate, grad_taps, grad_bias


def _taps(weight: torch.Tensor) -> torch.Tensor:
    """A ``(C, 1, 3, 3)`` weight as contiguous ``(C, 9)`` (a view for the contiguous and the
    channels-last layout)."""
    return weight.reshape(weight.shape[0], 9).contiguous()


def _check_dwconv_gate(
    value: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> None:
    _check_gate(value, gate)
    if value.dim() != 4:
        raise ValueError(f"the maps must be (B, H, W, C), got {tuple(value.shape)}")
    channels = value.shape[3]
    if tuple(weight.shape) != (channels, 1, 3, 3) or tuple(bias.shape) != (channels,):
        raise ValueError(
            f"a depthwise 3×3 convolution of {channels} channels takes weight "
            f"{(channels, 1, 3, 3)} and bias {(channels,)}, got {tuple(weight.shape)} and "
            f"{tuple(bias.shape)}"
        )
    if any(t.device.type != "cpu" or t.dtype != value.dtype for t in (weight, bias)):
        raise TypeError(
            f"weight and bias must be CPU tensors of the maps' dtype {value.dtype}; got "
            f"{[(str(t.device), t.dtype) for t in (weight, bias)]}"
        )


def _check_gate(value: torch.Tensor, gate: torch.Tensor) -> None:
    if value.shape != gate.shape:
        raise ValueError(
            f"the gate kernel takes tensors of one shape, got {tuple(value.shape)} and "
            f"{tuple(gate.shape)}"
        )
    for t in (value, gate):
        if t.device.type != "cpu" or t.dtype != value.dtype or value.dtype not in _SUFFIX:
            raise TypeError(
                "the C++ gate kernel takes CPU tensors of one dtype, float32 or float64; got "
                f"{[(str(x.device), x.dtype) for x in (value, gate)]}"
            )


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
        raise MemoryError("a C++ kernel could not allocate its buffers")


def _source_tag() -> str:
    """A short hash of the kernels' sources and headers."""
    digest = hashlib.sha1()
    for path in (*SOURCES, *HEADERS):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


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


def under_functorch(*tensors: torch.Tensor | None) -> bool:
    """Whether a ``torch.func`` transform (``jvp``, ``vmap``, ``grad``) wraps any of ``tensors``.

    The kernels' operators have no forward-mode or batching rule, and under ``jvp`` they would give
    a zero tangent without an error; their callers take PyTorch's path there instead. (Under
    ``torch.compile`` the compiler handles the transforms: False.)
    """
    if torch.compiler.is_compiling():
        return False
    wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    return any(t is not None and wrapped(t) for t in tensors)


def kernel_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether the C++ kernels serve ``dtype`` here (building them on the first call)."""
    return dtype in KERNEL_DTYPES and load_cpu_kernel() is not None


def _build(flags: list[str], name: str) -> str:
    from torch.utils import cpp_extension

    link = ["-fopenmp"] if "-fopenmp" in flags else []
    return cpp_extension.load(
        name=name,
        sources=[str(path) for path in SOURCES],
        extra_cflags=flags,
        extra_ldflags=link,
        is_python_module=False,
        verbose=False,
    )


@functools.cache
def load_cpu_kernel() -> CpuKernel | None:
    """The compiled kernels, built on the first call in a process (then cached on disk).

    Returns:
        A :class:`CpuKernel`, or ``None`` when it cannot be built here (no compiler, no ninja,
        ``TREEATTN_CPU_KERNEL=0``); one warning says why, and the answer is kept for the process.
    """
    if os.environ.get("TREEATTN_CPU_KERNEL", "1") == "0":
        logger.info("TREEATTN_CPU_KERNEL=0: the C++ kernels are off")
        return None
    errors = []
    for index, flags in enumerate(_FLAG_SETS):
        name = f"treeattn_kernels_{_cpu_tag()}_{_source_tag()}_{index}"
        logger.info("loading the C++ kernels %s (built once, then cached)", name)
        try:
            return CpuKernel(_build(flags, name))
        except Exception as err:  # a compiler error, no compiler, no ninja
            last = str(err).strip().splitlines()[-1:] or [type(err).__name__]
            errors.append(f"[{' '.join(flags)}] {last[0]}")
    logger.warning(
        "the C++ kernels could not be built (%s); treeattn uses its PyTorch path. "
        "Install a C++ compiler and ninja to get them, or set TREEATTN_CPU_KERNEL=0 to skip them.",
        "; ".join(errors),
    )
    return None
