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

import os
import threading
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["disabled", "f16_decode_lut", "get", "sym_layout", "wait"]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"kernels": None, "thread": None}
_BLOCK = 4096


def disabled() -> bool:
    """True when `QUANT_INSPECTOR_NO_JIT=1` asks for the pure-numpy paths."""
    return os.environ.get("QUANT_INSPECTOR_NO_JIT", "") not in ("", "0")


def get() -> SimpleNamespace | None:
    """The compiled kernels, or None while they load (the load starts on the first call),
    when disabled, or when numba is unavailable. Never blocks."""
    if disabled():
        return None
    kernels = _STATE["kernels"]
    if kernels is None and _STATE["thread"] is None:
        _start()
    return kernels or None


def wait(timeout: float | None = None) -> SimpleNamespace | None:
    """Start the load if needed and block until it finished (or `timeout` seconds passed);
    the kernels or None. For benchmarks and tests that must time or check the compiled path."""
    if disabled():
        return None
    get()
    thread = _STATE["thread"]
    if thread is not None:
        thread.join(timeout)
    return _STATE["kernels"] or None


def _start() -> None:
    with _LOCK:
        if _STATE["thread"] is None:
            thread = threading.Thread(target=_load, name="numba-kernels", daemon=True)
            _STATE["thread"] = thread
            thread.start()


def _load() -> None:
    try:
        _STATE["kernels"] = _compile()
    except BaseException:  # no numba, or a compile error: the numpy paths stay in use
        _STATE["kernels"] = False


def _compile() -> SimpleNamespace:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import numba as nb

        f32, f64, i64, u8, u16, i8 = nb.float32, nb.float64, nb.int64, nb.uint8, nb.uint16, nb.int8
        b1 = nb.boolean
        sums_t = nb.types.UniTuple(f64, 4)
        opts = {"nogil": True, "cache": True}

        def ro(dtype: Any, ndim: int = 1) -> Any:  # read-only input (memory-mapped files)
            return nb.types.Array(dtype, ndim, "C", readonly=True)

        def jit(fn: Any, sigs: list[Any], **extra: Any) -> Any:
            return nb.njit(sigs, **opts, **extra)(fn)

        enc_sigs = [
            i64(ro(f32), code[::1], f64, f64, f64, f64, f64, b1, f64, f64, b1) for code in (u8, u16)
        ]
        lut_sigs = [sums_t(ro(f32), ro(code), ro(f32)) for code in (u8, u16)]
        aff_sigs = [sums_t(ro(f32), ro(code), f64, f64) for code in (u8, u16)]
        sums_math = {"reassoc", "nnan", "nsz"}  # sums only: no code depends on them
        sym_enc = [i64(ro(f32, 2), ro(f32, 2), i64, i64, b1, i8[:, ::1])]
        sym_sums = [sums_t(ro(f32, 2), ro(i8, 2), ro(f32, 2), i64, b1)]
        absmax_sig = [nb.void(ro(f32, 2), i64, b1, f32[:, ::1])]
        f16_sig = [nb.void(ro(f32), ro(nb.uint32), u16[::1])]
        km_sig = [nb.void(ro(f32), ro(f32), ro(f32), ro(nb.int32), f32, f32, u8[::1])]
        bf16_sig = [nb.void(ro(nb.uint32), u16[::1])]
        lut_dec_sig = [nb.void(ro(u8), ro(f32), f32[::1])]
        seed_sig = [i64(ro(f64), i64, ro(f64), f64[::1])]
        prune_sig = [nb.void(ro(f32), ro(nb.uint32), i64, i64, f32[::1])]
        radix_sig = [nb.types.UniTuple(i64, 2)(ro(nb.uint32), i64)]
        aff_mse_sig = [f64[::1](ro(f64), ro(f64), ro(f64), ro(f64), ro(f64))]
        sym_mse_sig = [f64[::1](ro(f32), ro(f32), ro(f32), f32, b1, ro(f32))]
        return SimpleNamespace(
            affine_encode=jit(_affine_encode, enc_sigs),
            lut_sums=jit(_lut_sums, lut_sigs, fastmath=sums_math),
            affine_sums=jit(_affine_sums, aff_sigs, fastmath=sums_math),
            f16_encode=jit(_f16_encode, f16_sig),
            sym_encode=jit(_sym_encode, sym_enc),
            sym_sums=jit(_sym_sums, sym_sums, fastmath=sums_math),
            sym_absmax=jit(_sym_absmax, absmax_sig),
            kmeans_assign=jit(_kmeans_assign, km_sig),
            prune=jit(_prune, prune_sig),
            kmeans_seed=jit(_kmeans_seed, seed_sig),
            lut_decode=jit(_lut_decode, lut_dec_sig),
            bf16_encode=jit(_bf16_encode, bf16_sig),
            radix_select=jit(_radix_select, radix_sig),
            affine_mse_grid=jit(_affine_mse_grid, aff_mse_sig),
            sym_mse_grid=jit(_sym_mse_grid, sym_mse_sig),
        )


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


# ---- kernel bodies (plain Python; compiled by numba in `_compile`) ----


def _affine_encode(x, codes, mn, scale, lo, hi, qmax, exact_clip, far_lo, far_hi, count):  # type: ignore[no-untyped-def]
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


def _lut_sums(x, codes, lut):  # type: ignore[no-untyped-def]
    """(Σw², Σe², Σw'², max|e|) with w' = lut[code], float64, in blocks."""
    signal = noise = dec = 0.0
    worst = 0.0
    n = x.size
    for start in range(0, n, _BLOCK):
        s = e2 = d = 0.0
        w = 0.0
        for i in range(start, min(start + _BLOCK, n)):
            a = np.float64(x[i])
            b = np.float64(lut[codes[i]])
            e = a - b
            s += a * a
            d += b * b
            e2 += e * e
            w = max(w, abs(e))
        signal += s
        noise += e2
        dec += d
        worst = max(worst, w)
    return signal, noise, dec, worst


def _affine_sums(x, codes, scale, mn):  # type: ignore[no-untyped-def]
    """(Σw², Σe², Σw'², max|e|) with w' = float32(q·scale + min) computed in float64, as
    `affine.affine_decode` does (no table gather, so the loop vectorizes)."""
    signal = noise = dec = 0.0
    worst = 0.0
    n = x.size
    for start in range(0, n, _BLOCK):
        s = e2 = d = 0.0
        w = 0.0
        for i in range(start, min(start + _BLOCK, n)):
            a = np.float64(x[i])
            b = np.float64(np.float32(np.float64(codes[i]) * scale + mn))
            e = a - b
            s += a * a
            d += b * b
            e2 += e * e
            w = max(w, abs(e))
        signal += s
        noise += e2
        dec += d
        worst = max(worst, w)
    return signal, noise, dec, worst


def _f16_encode(x, bits, out):  # type: ignore[no-untyped-def]
    """float32 → float16 bit patterns, round to nearest even (finite inputs within ±65504)."""
    for i in range(x.size):
        u = np.int64(bits[i])
        sign = (u >> 16) & 0x8000
        u &= 0x7FFFFFFF
        if u >= 0x47800000:
            o = 0x7E00 if u > 0x7F800000 else 0x7C00
        elif u < 0x38800000:
            o = np.int64(np.rint(abs(np.float64(x[i])) * 16777216.0))
        else:
            o = (u + ((15 - 127) << 23) + 0xFFF + ((u >> 13) & 1)) >> 13
        out[i] = o | sign


def _sym_encode(a, scales, group, qmax, cols, codes):  # type: ignore[no-untyped-def]
    """int8 codes of `rint(x / scale)` in float32, clipped to ±qmax; the clipped count.
    `a` is (M, C) rows, or (C, M) when `cols`; `scales` (C, groups) with no zero. The inner
    loops are branch-free over one scale row or one group, so they vectorize."""
    p, q = a.shape
    edge = qmax + 0.5
    clipped = 0
    for r in range(p):
        if cols:
            for k0 in range(0, q, group):
                s = scales[r, k0 // group]
                for k in range(k0, min(k0 + group, q)):
                    t = a[r, k] / s
                    clipped += (t > edge) | (t < -edge)
                    codes[r, k] = min(max(np.rint(t), -qmax), qmax)
        else:
            g = r // group
            for k in range(q):
                t = a[r, k] / scales[k, g]
                clipped += (t > edge) | (t < -edge)
                codes[r, k] = min(max(np.rint(t), -qmax), qmax)
    return clipped


def _sym_sums(a, codes, scales, group, cols):  # type: ignore[no-untyped-def]
    """Error sums of float32 `q * scale` against `a` (layout as `_sym_encode`)."""
    p, q = a.shape
    signal = noise = dec = 0.0
    worst = 0.0
    for r in range(p):
        s2 = e2 = d = 0.0
        w_ = 0.0
        if cols:
            for k0 in range(0, q, group):
                s = scales[r, k0 // group]
                for k in range(k0, min(k0 + group, q)):
                    w = np.float64(a[r, k])
                    v = np.float64(np.float32(codes[r, k]) * s)
                    e = w - v
                    s2 += w * w
                    d += v * v
                    e2 += e * e
                    w_ = max(w_, abs(e))
        else:
            g = r // group
            for k in range(q):
                w = np.float64(a[r, k])
                v = np.float64(np.float32(codes[r, k]) * scales[k, g])
                e = w - v
                s2 += w * w
                d += v * v
                e2 += e * e
                w_ = max(w_, abs(e))
        signal += s2
        noise += e2
        dec += d
        worst = max(worst, w_)
    return signal, noise, dec, worst


def _sym_absmax(a, group, cols, out):  # type: ignore[no-untyped-def]
    """max|w| of every (channel, group) into `out` (C, groups), zeroed by the caller."""
    p, q = a.shape
    for r in range(p):
        if cols:
            for k0 in range(0, q, group):
                best = out[r, k0 // group]
                for k in range(k0, min(k0 + group, q)):
                    best = max(best, abs(a[r, k]))
                out[r, k0 // group] = best
        else:
            g = r // group
            for k in range(q):
                out[k, g] = max(out[k, g], abs(a[r, k]))


def _kmeans_assign(x, upper, lower, lut, lo, inv, codes):  # type: ignore[no-untyped-def]
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


def _bf16_encode(bits, out):  # type: ignore[no-untyped-def]
    """float32 → bfloat16 bit patterns, round to nearest even (finite inputs that round to a
    finite bfloat16: the caller saturates first)."""
    for i in range(bits.size):
        u = np.int64(bits[i])
        out[i] = (u + 0x7FFF + ((u >> 16) & 1)) >> 16


def _lut_decode(codes, lut, out):  # type: ignore[no-untyped-def]
    """`out[i] = lut[codes[i]]` (palette decode without numpy's intp index copy)."""
    for i in range(codes.size):
        out[i] = lut[codes[i]]


def _kmeans_seed(sub, first, draws, out):  # type: ignore[no-untyped-def]
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


def _prune(x, bits, thr, ties, out):  # type: ignore[no-untyped-def]
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


def _radix_select(bits, k):  # type: ignore[no-untyped-def]
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


def _affine_mse_grid(sample, mins, scales, los, his):  # type: ignore[no-untyped-def]
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


def _sym_mse_grid(vals, absmax, grid, qmax, half, f16):  # type: ignore[no-untyped-def]
    """Mean squared symmetric round-trip error of `vals` for every shrink r of `grid`, the
    scale of value i being `symmetric.int4_scales(absmax[i]·r)` when `half` (float16, RNE from
    float64, saturated; `f16` decodes the bits) else `int8_scales` (float32, 0 → 1), as
    `codecs._symmetric_fit`."""
    out = np.zeros(grid.size)
    buf = np.zeros(1, dtype=np.float32)
    ubuf = buf.view(np.uint32)
    for c in range(grid.size):
        acc = 0.0
        for i in range(vals.size):
            raw = np.float64(absmax[i] * grid[c])
            if half:  # float16 RNE of float64: float32 rounded to odd, then the bit formula
                y = min(raw / 7.0, 65504.0)
                buf[0] = np.float32(y)
                u = np.int64(ubuf[0])
                if np.float64(buf[0]) != y:
                    u = (u if np.float64(buf[0]) < y else u - 1) | 1
                if u < 0x38800000:
                    ubuf[0] = np.uint32(u)
                    o = np.int64(np.rint(np.float64(buf[0]) * 16777216.0))
                else:
                    o = (u + ((15 - 127) << 23) + 0xFFF + ((u >> 13) & 1)) >> 13
                s = f16[o]
            else:
                s = np.float32(raw / 127.0)
                if s == 0:
                    s = np.float32(1.0)
            safe = s if s > 0 else np.float32(1.0)
            q = min(max(np.rint(vals[i] / safe), -qmax), qmax)
            e = np.float64(q) * np.float64(s) - np.float64(vals[i])
            acc += e * e
        out[c] = acc / max(vals.size, 1)
    return out
