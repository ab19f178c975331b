"""Fused compiled kernels (numba) for the hot loops, with the numpy code as the fallback.

Each kernel does in one pass over the values what the numpy paths do in 5-10 passes over
cache-sized chunks, with the same arithmetic per element, so codes are bit-identical
(benchmarks/perf/check_exact.py, tests/core/test_kernels.py); error sums accumulate in float64
(in a different order, equal to ~1e-12 relative).

numba is imported lazily, on a background thread started by the first `get()`: `get()` never
blocks and returns None until the kernels are ready, so the numpy path serves the first calls
(a cold cache compiles for a few seconds; a warm one loads in ~0.6 s including numba's import)
and commands that never compute (`info`) never import numba. Compiled code is cached with
`cache=True` (next to this module, or numba's user-wide cache dir when the install is
read-only; `NUMBA_CACHE_DIR` overrides). `QUANT_INSPECTOR_NO_JIT=1` forces the numpy path;
a missing or failing numba falls back to it silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PAYS_FROM",
    "available",
    "cache_dir",
    "cached",
    "disabled",
    "f16_decode_lut",
    "for_one_run",
    "get",
    "huffman_cost",
    "kernel_names",
    "load_all",
    "sym_layout",
    "wait",
]

_LOCK = threading.Lock()
_LOCK_HELPERS = threading.Lock()
_STATE: dict[str, Any] = {"kernels": None, "thread": None, "decided": False}
_BLOCK = 4096
PAYS_FROM = 64_000_000
"""Elements from which a one-shot run loads cached kernels instead of running numpy alone.
Importing numba and loading the first kernel costs ~0.6-1.2 s of one core before any work
(LLVM's set-up); measured whole-process `preview --scheme uint8` on the shared two-core
machine at load 10-14: 38.6M values numpy 1.6-3.2 s against kernels 3.6-5.1 s; 110M values
numpy 4.6 s against kernels 3.9 s (benchmarks/perf/startup.py keeps measuring both)."""


def disabled() -> bool:
    """True when `QUANT_INSPECTOR_NO_JIT=1` asks for the pure-numpy paths."""
    return os.environ.get("QUANT_INSPECTOR_NO_JIT", "") not in ("", "0")


def available() -> bool:
    """True when the kernels could run: not disabled and numba installed (not imported)."""
    import importlib.util

    return not disabled() and importlib.util.find_spec("numba") is not None


def get() -> Any:
    """The compiled kernels, or None while they load (the load starts on the first call),
    when disabled, when numba is unavailable, or when `for_one_run` chose numpy. Never blocks
    (in a one-shot run a kernel's first use loads it from numba's cache: ~10-50 ms)."""
    if disabled():
        return None
    kernels = _STATE["kernels"]
    if kernels is None and _STATE["thread"] is None and not _STATE["decided"]:
        _start()
    return kernels or None


def wait(timeout: float | None = None) -> Any:
    """Start the load if needed and block until it finished (or `timeout` seconds passed);
    the kernels or None. For benchmarks and tests that must time or check the compiled path."""
    if disabled():
        return None
    get()
    thread = _STATE["thread"]
    if thread is not None:
        thread.join(timeout)
    return _STATE["kernels"] or None


def for_one_run(elements: int) -> Any:
    """Decide, before any work starts, how a process that computes once and exits (the CLI)
    runs its `elements` values: with the compiled kernels when numba's cache holds all of them
    and the work is large enough to pay for importing numba (`PAYS_FROM`), else with numpy
    alone. Never both: compiling or loading in the background would take one of two cores
    from the work it should speed up. Returns the kernels or None; later `get()` calls agree."""
    if disabled():
        return None
    with _LOCK:
        if _STATE["kernels"] is not None or _STATE["thread"] is not None or _STATE["decided"]:
            thread = _STATE["thread"]
        else:
            _STATE["decided"] = True
            thread = None
            _STATE["kernels"] = False
            if elements >= PAYS_FROM and cached():
                try:
                    _STATE["kernels"] = _Kernels()
                except BaseException:  # no numba: numpy
                    _STATE["kernels"] = False
    if thread is not None:
        thread.join()
    return _STATE["kernels"] or None


def load_all(progress: Any = None) -> Any:
    """Compile (or load from numba's cache) every kernel now, calling `progress(i, n, name)`
    before each; the kernels, or None without numba. For `quant-inspector warmup`."""
    if disabled():
        return None
    try:
        kernels = _Kernels()
    except ImportError:
        return None
    names = kernel_names()
    for i, name in enumerate(names):
        if progress is not None:
            progress(i, len(names), name)
        getattr(kernels, name)
    return kernels


def _start() -> None:
    with _LOCK:
        if _STATE["thread"] is None and not _STATE["decided"]:
            thread = threading.Thread(target=_load, name="numba-kernels", daemon=True)
            _STATE["thread"] = thread
            thread.start()


def _load() -> None:
    with contextlib.suppress(AttributeError, OSError):  # Linux: a thread has its own niceness
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # yields to the work
    try:
        kernels = _Kernels()
        for name in kernel_names():
            getattr(kernels, name)
        _STATE["kernels"] = kernels
    except BaseException:  # no numba, or a compile error: the numpy paths stay in use
        _STATE["kernels"] = False


def _nb() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import numba as nb
    return nb


class _Kernels:
    """The compiled kernels as attributes; each compiles on first access, from numba's
    on-disk cache when it holds it (`cache=True`)."""

    def __init__(self) -> None:
        self._nb = _nb()
        _install_helpers(self._nb)
        self._specs = _specs(self._nb)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        specs = self.__dict__.get("_specs")
        if specs is None or name not in specs:
            raise AttributeError(name)
        with self._lock:
            if name not in self.__dict__:
                sigs, extra = specs[name]
                opts = {"nogil": True, "cache": True, "error_model": "numpy", **extra}
                self.__dict__[name] = self._nb.njit(sigs, **opts)(_BODIES[name])
        return self.__dict__[name]


def _specs(nb: Any) -> dict[str, tuple[list[Any], dict[str, Any]]]:
    """name → (numba signatures, extra options) of every kernel (bodies: `_BODIES`)."""
    f32, f64, i64, u8, u16, i8 = nb.float32, nb.float64, nb.int64, nb.uint8, nb.uint16, nb.int8
    b1 = nb.boolean
    sums_t = nb.types.UniTuple(f64, 4)

    def ro(dtype: Any, ndim: int = 1) -> Any:  # read-only input (memory-mapped files)
        return nb.types.Array(dtype, ndim, "C", readonly=True)

    enc_sigs = [
        i64(ro(f32), code[::1], f64, f64, f64, f64, f64, b1, f64, f64, b1) for code in (u8, u16)
    ]
    lut_sigs = [sums_t(ro(f32), ro(code), ro(f32)) for code in (u8, u16)]
    aff_sigs = [sums_t(ro(f32), ro(code), f64, f64) for code in (u8, u16)]
    # error_model="numpy" (every kernel): float division by zero gives inf/nan as numpy does
    # instead of a checked raise, which also lets the division loops vectorize (~8x on int8).
    # Sums (no code depends on their order) and max|w| (exact in any order; its inputs
    # are |w| ≥ +0, never −0 or NaN) may reassociate, which lets their reductions vectorize.
    sums = {"fastmath": {"reassoc", "nnan", "nsz"}}
    sym_enc = [i64(ro(f32, 2), ro(f32, 2), i64, i64, b1, i8[:, ::1])]
    sym_sums = [sums_t(ro(f32, 2), ro(i8, 2), ro(f32, 2), i64, b1)]
    absmax_sig = [nb.void(ro(f32, 2), i64, b1, f32[:, ::1])]
    sym_dec = [nb.void(ro(i8, 2), ro(f32, 2), i64, b1, f32[:, ::1])]
    lloyd_sig = [f64[::1](ro(f64), ro(f64), f64[::1], i64)]
    f16_sig = [nb.void(ro(f32), ro(nb.uint32), u16[::1])]
    km_sig = [nb.void(ro(f32), ro(f32), ro(f32), ro(nb.int32), f32, f32, u8[::1])]
    bf16_sig = [nb.void(ro(nb.uint32), u16[::1])]
    lut_dec_sig = [nb.void(ro(u8), ro(f32), f32[::1])]
    seed_sig = [i64(ro(f64), i64, ro(f64), f64[::1])]
    prune_sig = [nb.void(ro(f32), ro(nb.uint32), i64, i64, f32[::1])]
    radix_sig = [nb.types.UniTuple(i64, 2)(ro(nb.uint32), i64)]
    aff_mse_sig = [f64[::1](ro(f64), ro(f64), ro(f64), ro(f64), ro(f64))]
    sym_mse_sig = [f64[::1](ro(f32), ro(f32), ro(f32), f32, b1)]
    counts_sig = [nb.void(ro(code), i64[::1]) for code in (u8, u16)]
    return {
        "affine_encode": (enc_sigs, {}),
        "lut_sums": (lut_sigs, sums),
        "affine_sums": (aff_sigs, sums),
        "f16_encode": (f16_sig, {}),
        "sym_encode": (sym_enc, {}),
        "sym_sums": (sym_sums, sums),
        "sym_absmax": (absmax_sig, sums),
        "sym_decode": (sym_dec, {}),
        "lloyd": (lloyd_sig, {}),
        "kmeans_assign": (km_sig, {}),
        "kmeans_count": ([nb.void(ro(f32), ro(f32), u8[::1])], {}),
        "prune": (prune_sig, {}),
        "kmeans_seed": (seed_sig, {}),
        "lut_decode": (lut_dec_sig, {}),
        "bf16_encode": (bf16_sig, {}),
        "radix_select": (radix_sig, {}),
        "affine_mse_grid": (aff_mse_sig, {}),
        "sym_mse_grid": (sym_mse_sig, sums),
        "huffman_cost": ([i64(ro(i64))], {}),
        "code_counts": (counts_sig, {}),
    }


def kernel_names() -> tuple[str, ...]:
    """Every kernel's attribute name, in load order."""
    return tuple(_BODIES)


def cache_dir() -> Path | None:
    """The folder numba caches this module's kernels in (its locators' order, without
    importing numba): `NUMBA_CACHE_DIR`, else `__pycache__` beside this file when writable,
    else the user-wide cache; None when none is usable."""
    here = Path(__file__).resolve()
    sub = f"{here.parent.name}_{hashlib.sha1(str(here.parent).encode()).hexdigest()}"
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        return Path(user) / sub
    tree = here.parent / "__pycache__"
    if os.access(tree if tree.is_dir() else here.parent, os.W_OK):
        return tree
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numba" / sub


def cached() -> bool:
    """True when numba's cache holds an index for every kernel, written after this module's
    source last changed (numba checks the source's hash itself: a stale entry recompiles)."""
    folder = cache_dir()
    if folder is None:
        return False
    src = Path(__file__).resolve().stat().st_mtime
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    for fn in _BODIES.values():
        index = (
            folder
            / f"{Path(__file__).stem}.{fn.__qualname__}-{fn.__code__.co_firstlineno}.{tag}.nbi"
        )
        try:
            if index.stat().st_mtime < src:
                return False
        except OSError:
            return False
    return True


_HELPERS = (
    "_merge",
    "_acc",
    "_dec_run",
    "_dec_each",
    "_enc_run",
    "_enc_each",
    "_sums_run",
    "_sums_each",
    "_amax_run",
    "_amax_each",
    "_lut_run",
    "_affine_run",
    "_f16_round",
    "_grid_err_f16",
    "_grid_err_f32",
)


def _install_helpers(nb: Any) -> None:
    """Replace the helper bodies below by compiled, always-inlined versions and `_fmax` by
    LLVM's `maxnum`, before the kernels that call them compile.

    Why helpers: a loop over a 1-D slice vectorizes where the same loop written with 2-D
    indices does not (int8 encode per channel-first row: 0.65 ms instead of 7 ms per 4M).
    Why maxnum: numba's `max` (a compare and select) blocks vectorization of any loop that
    also keeps a running maximum (error sums: 1 ms instead of 7 ms per 4M values).
    """
    from llvmlite import ir
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def maxnum(typingctx: Any, a: Any, b: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            t = args[0].type
            name = "llvm.maxnum.f32" if t == ir.FloatType() else "llvm.maxnum.f64"
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
            return builder.call(fn, args)

        return a(a, a), codegen

    @intrinsic
    def f64_bits(typingctx: Any, x: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.IntType(64))

        return nb.int64(nb.float64), codegen

    @intrinsic
    def bits_f64(typingctx: Any, u: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], ir.DoubleType())

        return nb.float64(nb.int64), codegen

    module = globals()
    with _LOCK_HELPERS:
        if not isinstance(module["_fmax"], type(_install_helpers)):
            return  # already installed
        module["_f64_bits"] = f64_bits
        module["_bits_f64"] = bits_f64
        for name in _HELPERS:
            module[name] = nb.njit(inline="always", error_model="numpy")(module[name])
        module["_fmax"] = maxnum  # last: it marks the helpers as installed


@lru_cache(maxsize=1)
def f16_decode_lut() -> np.ndarray:
    """float32 value of every float16 bit pattern (read-only)."""
    lut = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)
    lut.flags.writeable = False
    return lut


def sym_layout(x: np.ndarray, axis: int | None) -> tuple[np.ndarray, bool] | None:
    """`x` as a C-contiguous 2-D view for the symmetric kernels: `(M, C)` rows (channel last,
    or no channel) with False, `(C, M)` with True when the channel axis leads (ONNX/PyTorch);
    None when neither is a view (the numpy path handles it)."""
    if not x.flags.c_contiguous:
        return None
    if axis is None or x.ndim == 0:
        return x.reshape(-1, 1), False
    channels = x.shape[axis]
    rest = x.size // channels if channels else 0
    if axis == x.ndim - 1:
        return x.reshape(rest, channels), False
    if all(n == 1 for n in x.shape[:axis]):
        return x.reshape(channels, rest), True
    return None


# ---- kernel bodies (plain Python; compiled by numba in `_Kernels`) ----


def _fmax(a, b):
    """The larger of two floats (LLVM's maxnum once compiled: NaN loses, as it cannot occur
    here: non-finite tensors never reach the kernels)."""
    return a if a >= b else b


def _f64_bits(y):
    """The bit pattern of a float64 as an int64 (a register bitcast once compiled)."""
    return np.array([y]).view(np.int64)[0]


def _bits_f64(u):
    """The float64 of an int64 bit pattern (inverse of `_f64_bits`)."""
    return np.array([u], dtype=np.int64).view(np.float64)[0]


def _enc_run(a, codes, s, edge, qmax):
    """int8 codes of float32 `rint(a / s)` clipped to ±qmax for one scale `s`; how many
    |a / s| exceed `edge` (= qmax + 0.5, the clipped values)."""
    n = 0
    for i in range(a.size):
        t = a[i] / s
        n += abs(t) > edge
        codes[i] = min(max(np.rint(t), -qmax), qmax)
    return n


def _enc_each(a, codes, s, edge, qmax):
    """`_enc_run` with a scale per value (`s` as long as `a`)."""
    n = 0
    for i in range(a.size):
        t = a[i] / s[i]
        n += abs(t) > edge
        codes[i] = min(max(np.rint(t), -qmax), qmax)
    return n


def _merge(total, part):
    """Two (Σw², Σe², Σw'², max|e|) sums as one."""
    return total[0] + part[0], total[1] + part[1], total[2] + part[2], max(total[3], part[3])


def _acc(w, v, s2, e2, d, m):
    """One value into the error sums: (Σw², Σe², Σw'², max|e|) with e = w − w' (float64)."""
    e = w - v
    return s2 + w * w, e2 + e * e, d + v * v, _fmax(m, abs(e))


def _sums_run(a, codes, s):
    """(Σw², Σe², Σw'², max|e|) of w' = float32 `q * s` for one scale `s`, in float64."""
    s2 = e2 = d = w_ = 0.0
    for i in range(a.size):
        v = np.float64(np.float32(codes[i]) * s)
        s2, e2, d, w_ = _acc(np.float64(a[i]), v, s2, e2, d, w_)
    return s2, e2, d, w_


def _sums_each(a, codes, s):
    """`_sums_run` with a scale per value."""
    s2 = e2 = d = w_ = 0.0
    for i in range(a.size):
        v = np.float64(np.float32(codes[i]) * s[i])
        s2, e2, d, w_ = _acc(np.float64(a[i]), v, s2, e2, d, w_)
    return s2, e2, d, w_


def _amax_run(a, best):
    """max(best, max|a|)."""
    for i in range(a.size):
        best = _fmax(best, abs(a[i]))
    return best


def _amax_each(a, out):
    """out[i] = max(out[i], |a[i]|)."""
    for i in range(a.size):
        out[i] = _fmax(out[i], abs(a[i]))


def _affine_encode(x, codes, mn, scale, lo, hi, qmax, exact_clip, far_lo, far_hi, count):
    """`affine.affine_encode`'s float64 maths per element; returns the clipped count."""
    clipped = 0
    for i in range(x.size):
        t = np.float64(x[i])
        if count and (t < far_lo or t > far_hi):
            clipped += 1
        if not exact_clip:
            t = min(max(t, lo), hi)
        t = (t - mn) / scale
        if exact_clip:
            t = min(max(t, 0.0), qmax)
        codes[i] = np.rint(t)
    return clipped


def _lut_run(x, codes, lut):
    """(Σw², Σe², Σw'², max|e|) with w' = lut[code], float64, over one block."""
    s = e2 = d = w = 0.0
    for i in range(x.size):
        s, e2, d, w = _acc(np.float64(x[i]), np.float64(lut[codes[i]]), s, e2, d, w)
    return s, e2, d, w


def _affine_run(x, codes, scale, mn):
    """`_lut_run` for w' = float32(q·scale + min) computed in float64, as
    `affine.affine_decode` does (no table gather, so the loop vectorizes)."""
    s = e2 = d = w = 0.0
    for i in range(x.size):
        b = np.float64(np.float32(np.float64(codes[i]) * scale + mn))
        s, e2, d, w = _acc(np.float64(x[i]), b, s, e2, d, w)
    return s, e2, d, w


def _lut_sums(x, codes, lut):
    """(Σw², Σe², Σw'², max|e|) with w' = lut[code], float64, summed per block of values."""
    total = (0.0, 0.0, 0.0, 0.0)
    for start in range(0, x.size, _BLOCK):
        stop = min(start + _BLOCK, x.size)
        total = _merge(total, _lut_run(x[start:stop], codes[start:stop], lut))
    return total


def _affine_sums(x, codes, scale, mn):
    """`_lut_sums` of affine codes (see `_affine_run`)."""
    total = (0.0, 0.0, 0.0, 0.0)
    for start in range(0, x.size, _BLOCK):
        stop = min(start + _BLOCK, x.size)
        total = _merge(total, _affine_run(x[start:stop], codes[start:stop], scale, mn))
    return total


def _f16_encode(x, bits, out):
    """float32 → float16 bit patterns, round to nearest even (finite inputs within ±65504)."""
    for i in range(x.size):
        u = np.int64(bits[i])
        sign = (u >> 16) & 0x8000
        u &= 0x7FFFFFFF
        if u >= 0x47800000:
            o = np.int64(0x7E00 if u > 0x7F800000 else 0x7C00)
        elif u < 0x38800000:
            o = np.int64(np.rint(abs(np.float64(x[i])) * 16777216.0))
        else:
            o = (u + ((15 - 127) << 23) + 0xFFF + ((u >> 13) & 1)) >> 13
        out[i] = o | sign


def _sym_encode(a, scales, group, qmax, cols, codes):
    """int8 codes of `rint(x / scale)` in float32, clipped to ±qmax; the clipped count.
    `a` is (M, C) rows with `scales` (groups, C), or (C, M) when `cols` with `scales`
    (C, groups); no scale is zero. Each inner loop is a 1-D run, so it vectorizes."""
    p, q = a.shape
    edge = np.float32(qmax + 0.5)
    top = np.float32(qmax)
    clipped = 0
    for r in range(p):
        if cols:
            for k0 in range(0, q, group):
                k1 = min(k0 + group, q)
                s = scales[r, k0 // group]
                clipped += _enc_run(a[r, k0:k1], codes[r, k0:k1], s, edge, top)
        else:
            clipped += _enc_each(a[r], codes[r], scales[r // group], edge, top)
    return clipped


def _sym_sums(a, codes, scales, group, cols):
    """Error sums of float32 `q * scale` against `a` (layouts as `_sym_encode`)."""
    p, q = a.shape
    total = (0.0, 0.0, 0.0, 0.0)
    for r in range(p):
        if cols:
            for k0 in range(0, q, group):
                k1 = min(k0 + group, q)
                s = scales[r, k0 // group]
                total = _merge(total, _sums_run(a[r, k0:k1], codes[r, k0:k1], s))
        else:
            total = _merge(total, _sums_each(a[r], codes[r], scales[r // group]))
    return total


def _dec_run(codes, out, s):
    """out = float32 `q * s` for one scale."""
    for i in range(codes.size):
        out[i] = np.float32(codes[i]) * s


def _dec_each(codes, out, s):
    """`_dec_run` with a scale per value."""
    for i in range(codes.size):
        out[i] = np.float32(codes[i]) * s[i]


def _sym_decode(codes, scales, group, cols, out):
    """float32 `q * scale` of int8 codes into `out` (layouts as `_sym_encode`); a product past
    float32's max is ±inf, as numpy and a float32 runtime compute it."""
    p, q = codes.shape
    for r in range(p):
        if cols:
            for k0 in range(0, q, group):
                k1 = min(k0 + group, q)
                _dec_run(codes[r, k0:k1], out[r, k0:k1], scales[r, k0 // group])
        else:
            _dec_each(codes[r], out[r], scales[r // group])


def _sym_absmax(a, group, cols, out):
    """max|w| of every (channel, group) into `out`, zeroed by the caller: (C, groups) when
    `cols`, else (groups, C)."""
    p, q = a.shape
    for r in range(p):
        if cols:
            for k0 in range(0, q, group):
                g = k0 // group
                out[r, g] = _amax_run(a[r, k0 : min(k0 + group, q)], out[r, g])
        else:
            _amax_each(a[r], out[r // group])


def _lloyd(vals, csum, centers, max_iter):
    """`kmeans._lloyd`'s iterations with the same float64 operations: sorted `vals`, their
    prefix sums `csum` (n + 1), sorted `centers`; returns the final centers."""
    k, n = centers.size, vals.size
    edges = np.empty(k + 1, dtype=np.int64)
    new = np.empty(k)
    for _ in range(max_iter):
        edges[0], edges[k] = 0, n
        for j in range(k - 1):
            edges[j + 1] = np.searchsorted(vals, (centers[j] + centers[j + 1]) / 2, side="right")
        for j in range(k):
            count = edges[j + 1] - edges[j]
            if count > 0:
                new[j] = (csum[edges[j + 1]] - csum[edges[j]]) / count
            else:
                new[j] = centers[j]
        new.sort()
        if np.array_equal(new, centers):
            break
        centers = new.copy()
    return centers


def _kmeans_count(x, bounds, codes):
    """codes[i] = how many `bounds` lie below x[i] (`searchsorted(bounds, x, 'left')`), by one
    vectorized compare-and-add pass per bound over cache-sized blocks: for small palettes
    this beats the table guess (a scalar gather) several times over."""
    for s0 in range(0, x.size, _BLOCK):
        s1 = min(s0 + _BLOCK, x.size)
        xs = x[s0:s1]
        cs = codes[s0:s1]
        cs[:] = 0
        for j in range(bounds.size):
            b = bounds[j]
            for i in range(xs.size):
                cs[i] += xs[i] > b


def _kmeans_assign(x, upper, lower, lut, lo, inv, codes):
    """Number of midpoints below each value (`searchsorted(bounds, x, 'left')`) from a
    lookup table: an entry ≥ 0 is the code of every value that can land in that bin (no
    midpoint within two bins of it); an entry −1 − guess asks for exact comparisons from the
    guess against `upper` (the midpoints, then +inf) and `lower` (−inf, then the midpoints)."""
    top = lut.size - 1
    for i in range(x.size):
        v = x[i]
        g = (v - lo) * inv
        code = np.int64(lut[np.int64(min(max(g, np.float32(0.0)), np.float32(top)))])
        if code < 0:
            code = -1 - code
            while v > upper[code]:
                code += 1
            while v <= lower[code]:
                code -= 1
        codes[i] = code


def _bf16_encode(bits, out):
    """float32 → bfloat16 bit patterns, round to nearest even (finite inputs that round to a
    finite bfloat16: the caller saturates first)."""
    for i in range(bits.size):
        u = np.int64(bits[i])
        out[i] = (u + 0x7FFF + ((u >> 16) & 1)) >> 16


def _lut_decode(codes, lut, out):
    """`out[i] = lut[codes[i]]` (palette decode without numpy's intp index copy)."""
    for i in range(codes.size):
        out[i] = lut[codes[i]]


def _kmeans_seed(sub, first, draws, out):
    """`kmeans._seed_centers`' k-means++ picks with the same draws and sums (the total is the
    sequential cumulative sum's last value in both paths); how many centers went to `out`."""
    n = sub.size
    d2 = (sub - sub[first]) ** 2
    cum = np.empty(n)
    out[0] = sub[first]
    got = 1
    while got < out.size:
        acc = 0.0
        for i in range(n):
            acc += d2[i]
            cum[i] = acc
        if not acc > 0:
            break
        pick = min(np.searchsorted(cum, draws[got - 1] * acc, side="right"), n - 1)
        c = sub[pick]
        out[got] = c
        got += 1
        for i in range(n):
            d2[i] = min(d2[i], (sub[i] - c) ** 2)
    return got


def _prune(x, bits, thr, ties, out):
    """`x` with every |w| below the bit pattern `thr` and the first `ties` equal to it zeroed
    (|w| orders as its float bits with the sign cleared)."""
    for i in range(bits.size):  # branch-free, vectorizes
        out[i] = x[i] if (bits[i] & 0x7FFFFFFF) >= thr else np.float32(0.0)
    i = 0
    while ties > 0 and i < bits.size:
        if (bits[i] & 0x7FFFFFFF) == thr:
            out[i] = 0.0
            ties -= 1
        i += 1


def _radix_select(bits, k):
    """(bit pattern of the k-th smallest |w|, how many equal to it are among the k smallest):
    a two-level radix select, 2 passes."""
    hist = np.zeros(1 << 16, dtype=np.int64)
    for i in range(bits.size):
        hist[(bits[i] & 0x7FFFFFFF) >> 16] += 1
    below = 0
    top = 0
    while below + hist[top] < k:
        below += hist[top]
        top += 1
    hist[:] = 0
    for i in range(bits.size):
        u = bits[i] & 0x7FFFFFFF
        if (u >> 16) == top:
            hist[u & 0xFFFF] += 1
    low = 0
    while below + hist[low] < k:
        below += hist[low]
        low += 1
    return (top << 16) | low, k - below


def _affine_mse_grid(sample, mins, scales, los, his):
    """Mean squared affine round-trip error of the float64 sample for every candidate
    (min, scale, lo, hi), with `codecs._affine_fit`'s maths."""
    out = np.zeros(mins.size)
    for c in range(mins.size):
        mn, scale, lo, hi = mins[c], scales[c], los[c], his[c]
        acc = 0.0
        for i in range(sample.size):
            v = sample[i]
            q = np.rint((min(max(v, lo), hi) - mn) / scale)
            e = q * scale + mn - v
            acc += e * e
        out[c] = acc / max(sample.size, 1)
    return out


def _f16_round(y):
    """float16 RNE of the float64 `y` in [0, 65504], as a float64: numpy's float64 → float16
    cast. Normal results round the float64 mantissa to 10 bits on its bit pattern (a carry
    moves into the exponent); below 2^-14 the float16 step is 2^-24."""
    u = _f64_bits(y)
    normal = _bits_f64(((u + 0x1FFFFFFFFFF + ((u >> 42) & 1)) >> 42) << 42)
    sub = np.rint(y * 16777216.0) * (1.0 / 16777216.0)
    return normal if y >= 6.103515625e-05 else sub


def _grid_err_f16(vals, absmax, r, qmax):
    """Σ squared int4 round-trip error of `vals` when every max|w| is shrunk by `r`
    (scale `symmetric.int4_scales`: float16 of max|w|·r / 7, saturated; 0 divides by 1)."""
    acc = 0.0
    for i in range(vals.size):
        s = np.float32(_f16_round(min(np.float64(absmax[i] * r) / 7.0, 65504.0)))
        safe = s if s > 0 else np.float32(1.0)
        q = min(max(np.rint(vals[i] / safe), -qmax), qmax)
        e = np.float64(q) * np.float64(s) - np.float64(vals[i])
        acc += e * e
    return acc


def _grid_err_f32(vals, absmax, r, qmax):
    """`_grid_err_f16` for int8 (scale `symmetric.int8_scales`: float32 max|w|·r / 127,
    0 → 1)."""
    acc = 0.0
    for i in range(vals.size):
        s = np.float32(np.float64(absmax[i] * r) / 127.0)
        s = s if s != 0 else np.float32(1.0)
        q = min(max(np.rint(vals[i] / s), -qmax), qmax)
        e = np.float64(q) * np.float64(s) - np.float64(vals[i])
        acc += e * e
    return acc


def _sym_mse_grid(vals, absmax, grid, qmax, half):
    """Mean squared symmetric round-trip error of `vals` for every shrink r of `grid`, the
    scale of value i being `symmetric.int4_scales(absmax[i]·r)` when `half` else
    `int8_scales`, as `codecs._symmetric_fit`."""
    out = np.zeros(grid.size)
    for c in range(grid.size):
        if half:
            out[c] = _grid_err_f16(vals, absmax, grid[c], qmax)
        else:
            out[c] = _grid_err_f32(vals, absmax, grid[c], qmax)
        out[c] /= max(vals.size, 1)
    return out


def huffman_cost(counts: np.ndarray) -> int:
    """Total bits of a Huffman code for `counts` (int64, sorted ascending, ≥ 2 of them): the
    sum of every merged weight, by the two-queue method (merged weights come out sorted).
    Plain Python is the fallback; the kernel is this function compiled."""
    n = counts.size
    merged = np.empty(n, np.int64)
    i = j = 0
    total = 0
    for k in range(n - 1):  # k: merged weights so far
        if j >= k or (i < n and counts[i] <= merged[j]):
            x = counts[i]
            i += 1
        else:
            x = merged[j]
            j += 1
        if j >= k or (i < n and counts[i] <= merged[j]):
            y = counts[i]
            i += 1
        else:
            y = merged[j]
            j += 1
        merged[k] = x + y
        total += x + y
    return total


def _code_counts(codes, out):
    """out[c] += how many codes equal c, in four interleaved histograms so consecutive equal
    codes do not wait on each other's increment."""
    k = out.size
    h = np.zeros(4 * k, np.int64)
    n4 = codes.size - codes.size % 4
    for i in range(0, n4, 4):
        h[codes[i]] += 1
        h[k + codes[i + 1]] += 1
        h[2 * k + codes[i + 2]] += 1
        h[3 * k + codes[i + 3]] += 1
    for i in range(n4, codes.size):
        h[codes[i]] += 1
    for c in range(k):
        out[c] += h[c] + h[k + c] + h[2 * k + c] + h[3 * k + c]


_BODIES = {
    "affine_encode": _affine_encode,
    "lut_sums": _lut_sums,
    "affine_sums": _affine_sums,
    "f16_encode": _f16_encode,
    "sym_encode": _sym_encode,
    "sym_sums": _sym_sums,
    "sym_absmax": _sym_absmax,
    "sym_decode": _sym_decode,
    "lloyd": _lloyd,
    "kmeans_assign": _kmeans_assign,
    "kmeans_count": _kmeans_count,
    "prune": _prune,
    "kmeans_seed": _kmeans_seed,
    "lut_decode": _lut_decode,
    "bf16_encode": _bf16_encode,
    "radix_select": _radix_select,
    "affine_mse_grid": _affine_mse_grid,
    "sym_mse_grid": _sym_mse_grid,
    "huffman_cost": huffman_cost,
    "code_counts": _code_counts,
}
"""Kernel name → its Python body (the numpy-semantics reference numba compiles)."""
