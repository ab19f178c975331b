"""Symmetric integer schemes: int8 per output channel and int4 per group (GGUF Q4_0-like).

Both view the tensor as rows × channels, `(M, C)`: the channel axis moved last and every other
axis flattened in C order (a view for the usual Keras `(…, out)` and ONNX `(out, …)` layouts).
int8 has one scale per channel; int4 has one scale per group of `group` consecutive rows of a
channel, i.e. consecutive values along the flattened non-channel (input) dims. A tensor without
a channel axis (0-d, 1-d) is one channel.

int8: scale = max|w|/127 stored as float32, codes −127…127, an all-zero channel stores scale 1.0
(codes 0). Quantize `rint(x/scale)` and decode `q*scale` are float32 operations, the semantics of
ONNX QuantizeLinear/DequantizeLinear.
int4: scale = max|w|/7 rounded to float16 (as GGUF Q4_0 stores `d`), then codes `rint(x/scale)`
in −7…7 with the rounded scale, so the error bound holds for the stored scale. An all-zero (or
float16-underflowing) group stores scale 0 and codes 0; a group whose scale exceeds float16's
65504 stores 65504 and its values clip (counted as overflow). Codes are stored as the nibble
`q + 8` (1…15).
"""

from __future__ import annotations

import numpy as np

from inspector.core import jit
from inspector.core.chunking import CHUNK, on_two_threads
from inspector.core.metrics import ErrorSums

__all__ = [
    "as_rows",
    "block_decode",
    "block_encode",
    "block_view",
    "from_rows",
    "group_absmax",
    "int4_scales",
    "int8_scales",
    "jit_absmax",
    "jit_decode",
    "jit_encode",
    "symmetric_decode",
    "symmetric_encode",
    "symmetric_error_sums",
]

F16_MAX = 65504.0


def as_rows(x: np.ndarray, axis: int | None) -> np.ndarray:
    """`x` as `(M, C)` with the channel axis last (C = 1 when `axis` is None)."""
    if axis is None:
        return x.reshape(-1, 1)
    moved = np.moveaxis(x, axis, -1)
    channels = x.shape[axis]
    return moved.reshape(x.size // channels if channels else 0, channels)


def from_rows(rows: np.ndarray, shape: tuple[int, ...], axis: int | None) -> np.ndarray:
    """Inverse of `as_rows`: an `(M, C)` array back in the tensor's layout."""
    if axis is None:
        return rows.reshape(shape)
    moved_shape = shape[:axis] + shape[axis + 1 :] + (shape[axis],)
    return np.moveaxis(rows.reshape(moved_shape), -1, axis)


def group_absmax(rows: np.ndarray, group: int) -> np.ndarray:
    """max|w| per (channel, group) as float32 of shape `(C, ceil(M/group))`. An all-zero group
    gives +0.0, as the compiled kernel does (`max(0, -0)` is −0.0 in numpy, and a −0.0 scale
    would store different bytes and decode to −0.0)."""
    m, c = rows.shape
    ngroups = -(-m // group) if m else 0
    out = np.zeros((ngroups, c), dtype=np.float32)
    step = group * max(1, CHUNK // max(1, group * c))
    for r0 in range(0, m, step):
        part = rows[r0 : r0 + step]
        g0 = r0 // group
        full = part.shape[0] // group
        if full:
            blocks = part[: full * group].reshape(full, group, c)
            out[g0 : g0 + full] = np.maximum(blocks.max(axis=1), -blocks.min(axis=1))
        if part.shape[0] % group:
            tail = part[full * group :]
            out[g0 + full] = np.maximum(tail.max(axis=0), -tail.min(axis=0))
    np.abs(out, out=out)
    return np.ascontiguousarray(out.T)


def int8_scales(absmax: np.ndarray) -> np.ndarray:
    """float32 scales max|w|/127; an all-zero channel gets 1.0 so the scale is never 0."""
    scales = (absmax.astype(np.float64) / 127.0).astype(np.float32)
    scales[scales == 0] = 1.0
    return scales


def int4_scales(absmax: np.ndarray) -> tuple[np.ndarray, int]:
    """float16 scales max|w|/7 (RNE), saturated at 65504; also how many groups saturated."""
    raw = absmax.astype(np.float64) / 7.0
    saturated = int(np.count_nonzero(raw > F16_MAX))
    return np.minimum(raw, F16_MAX).astype(np.float16), saturated


def _row_step(group: int, channels: int) -> int:
    """Rows per chunk: whole groups when a group fits in a chunk, else a chunk of rows."""
    if 0 < group * channels <= CHUNK:
        return group * (CHUNK // (group * channels))
    return max(1, CHUNK // max(1, channels))


def _per_row(
    part: np.ndarray, scales_t: np.ndarray, r0: int, group: int, op: np.ufunc
) -> np.ndarray:
    """`op(part, scale of each value's group)` into a float32 result, without a full gather
    when the chunk lies in one group (int8) or is made of whole groups (int4).

    Overflow is expected, not an error: a value far beyond a tiny scale divides to ±inf and is
    then clipped to ±qmax; a top code times a scale rounded up past float32's max decodes to
    ±inf, as a float32 runtime computes it.
    """
    with np.errstate(over="ignore"):
        return _apply_scales(part, scales_t, r0, group, op)


def _apply_scales(
    part: np.ndarray, scales_t: np.ndarray, r0: int, group: int, op: np.ufunc
) -> np.ndarray:
    rows, c = part.shape
    g0, g1 = r0 // group, (r0 + rows - 1) // group + 1
    if g1 - g0 == 1:
        return op(part, scales_t[g0], dtype=np.float32)
    if r0 % group == 0 and rows % group == 0:
        blocks = part.reshape(-1, group, c)
        return op(blocks, scales_t[g0:g1, None, :], dtype=np.float32).reshape(rows, c)
    return op(part, scales_t[np.arange(r0, r0 + rows) // group], dtype=np.float32)


def symmetric_encode(
    rows: np.ndarray, scales: np.ndarray, group: int, qmax: int
) -> tuple[np.ndarray, int]:
    """int8 codes `(M, C)` for scales `(C, ngroups)`; also how many values were clipped.

    A zero scale (all-zero or float16-underflowing int4 group) divides by 1 instead: its
    values are below 2^-24·7, so their codes round to 0.
    """
    m, c = rows.shape
    codes = np.empty((m, c), dtype=np.int8)
    s32 = scales.astype(np.float32).T
    safe = np.where(s32 > 0, s32, np.float32(1.0))
    clipped = 0
    step = _row_step(group, c)
    for r0 in range(0, m, step):
        part = rows[r0 : r0 + step]
        t = _per_row(part, safe, r0, group, np.divide)
        clipped += int(np.count_nonzero(t > qmax + 0.5)) + int(np.count_nonzero(t < -qmax - 0.5))
        np.rint(t, out=t)
        np.clip(t, -qmax, qmax, out=t)
        codes[r0 : r0 + part.shape[0]] = t
    return codes, clipped


def symmetric_decode(codes: np.ndarray, scales: np.ndarray, group: int) -> np.ndarray:
    """float32 `q * scale` (one float32 rounding) for codes `(M, C)` and scales `(C, ngroups)`."""
    m, c = codes.shape
    out = np.empty((m, c), dtype=np.float32)
    s32 = scales.astype(np.float32).T
    step = _row_step(group, c)
    for r0 in range(0, m, step):
        part = codes[r0 : r0 + step]
        out[r0 : r0 + part.shape[0]] = _per_row(part, s32, r0, group, np.multiply)
    return out


def block_view(x: np.ndarray, axis: int | None, group: int | None) -> np.ndarray | None:
    """`x` as `(C, ngroups, group)` without a copy when the channel axis leads (ONNX/PyTorch
    `(out, …)` layouts: `as_rows` would be a transpose, slow to walk), else None.

    Needs a C-contiguous `x`, every axis before `axis` of length 1, the per-channel run
    `M` divisible by `group` (int8: `group` None, one group of M) and M at most 4·CHUNK.
    """
    if axis is None or x.ndim < 2 or not x.flags.c_contiguous or axis == x.ndim - 1:
        return None
    if any(n != 1 for n in x.shape[:axis]):
        return None
    channels = x.shape[axis]
    m = x.size // channels if channels else 0
    g = m if group is None else min(group, m)
    if m == 0 or m % g or m > 4 * CHUNK:
        return None
    return x.reshape(channels, m // g, g)


def _block_steps(v: np.ndarray) -> range:
    return range(0, v.shape[0], max(1, CHUNK // max(1, v.shape[1] * v.shape[2])))


def block_encode(v: np.ndarray, scales: np.ndarray, qmax: int) -> tuple[np.ndarray, int]:
    """`symmetric_encode` on a `block_view` (`scales` `(C, ngroups)`): the same float32
    operations value for value, in the tensor's own layout."""
    codes = np.empty(v.shape, dtype=np.int8)
    s32 = scales.astype(np.float32)[:, :, None]
    safe = np.where(s32 > 0, s32, np.float32(1.0))
    clipped = 0
    steps = _block_steps(v)
    for c0 in steps:
        cut = slice(c0, c0 + steps.step)
        with np.errstate(over="ignore"):
            t = np.divide(v[cut], safe[cut], dtype=np.float32)
        clipped += int(np.count_nonzero(t > qmax + 0.5)) + int(np.count_nonzero(t < -qmax - 0.5))
        np.rint(t, out=t)
        np.clip(t, -qmax, qmax, out=t)
        codes[cut] = t
    return codes, clipped


def block_decode(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """`symmetric_decode` on a `block_view` of the codes: float32 `q * scale`."""
    out = np.empty(codes.shape, dtype=np.float32)
    s32 = scales.astype(np.float32)[:, :, None]
    steps = _block_steps(codes)
    for c0 in steps:
        cut = slice(c0, c0 + steps.step)
        with np.errstate(over="ignore"):
            np.multiply(codes[cut], s32[cut], out=out[cut], dtype=np.float32)
    return out


def _kernel_layout(
    x: np.ndarray, axis: int | None, dtype: type = np.float32
) -> tuple[np.ndarray, bool, int, int] | None:
    """(2-D view, channel-first, channels C, values per channel M) of a non-empty tensor of
    `dtype` (float32 values, int8 codes) the kernels can walk in its own layout, or None."""
    if x.dtype != dtype or x.size == 0:
        return None
    layout = jit.sym_layout(x, axis)
    if layout is None:
        return None
    a, cols = layout
    channels, m = (a.shape[0], a.shape[1]) if cols else (a.shape[1], a.shape[0])
    return a, cols, channels, m


def _jit_args(
    x: np.ndarray,
    scales: np.ndarray,
    group: int | None,
    axis: int | None,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray, int, bool] | None:
    """(2-D view, float32 scales, group, channel-first) for the kernels, or None. The scales
    are (C, groups) channel-first, else (groups, C): a row of values meets one row of scales."""
    layout = _kernel_layout(x, axis, dtype)
    if layout is None:
        return None
    a, cols, channels, m = layout
    s32 = np.asarray(scales, dtype=np.float32).reshape(channels, -1)
    return a, np.ascontiguousarray(s32 if cols else s32.T), max(1, group or m), cols


def jit_encode(
    x: np.ndarray, scales: np.ndarray, group: int | None, qmax: int, axis: int | None
) -> tuple[np.ndarray, int] | None:
    """`symmetric_encode`'s codes (shaped like `x`, C order) and clipped count from the fused
    kernel, or None when it is not loaded or `x`'s layout is not a plain view."""
    fast = jit.get()
    args = None if fast is None else _jit_args(x, scales, group, axis)
    if args is None:
        return None
    a, s32, g, cols = args
    safe = np.where(s32 > 0, s32, np.float32(1.0))
    codes = np.empty(a.shape, dtype=np.int8)
    parts = _row_halves(a, safe, g, cols, codes)
    clipped = sum(
        on_two_threads(
            [lambda p=p: fast.sym_encode(p[0], p[1], g, qmax, cols, p[2]) for p in parts]
        )
    )
    return codes.reshape(x.shape), int(clipped)


def jit_decode(
    codes: np.ndarray, scales: np.ndarray, group: int | None, axis: int | None
) -> np.ndarray | None:
    """`symmetric_decode`'s float32 values shaped like `codes` from the compiled kernel (two
    threads on large tensors), or None when it is not loaded or the layout is not a view."""
    fast = jit.get()
    args = None if fast is None else _jit_args(codes, scales, group, axis, np.int8)
    if args is None:
        return None
    a, s32, g, cols = args
    out = np.empty(a.shape, dtype=np.float32)
    parts = _row_halves(a, s32, g, cols, out)
    on_two_threads([lambda p=p: fast.sym_decode(p[0], p[1], g, cols, p[2]) for p in parts])
    return out.reshape(codes.shape)


def _row_halves(
    a: np.ndarray, scales: np.ndarray, g: int, cols: bool, codes: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`(a, scales, codes)` split into two row ranges the kernels can run independently (a
    multiple of the group when groups run along rows), or the whole when small."""
    p = a.shape[0]
    whole = [(a, scales, codes)]
    if a.size < 1 << 20 or p < 2:
        return whole
    if cols:
        r0 = p // 2
        return [(a[:r0], scales[:r0], codes[:r0]), (a[r0:], scales[r0:], codes[r0:])]
    if g >= p:
        r0 = p // 2
        return [(a[:r0], scales, codes[:r0]), (a[r0:], scales, codes[r0:])]
    r0 = (p // 2) // g * g
    if r0 == 0:
        return whole
    return [(a[:r0], scales, codes[:r0]), (a[r0:], scales[r0 // g :], codes[r0:])]


def symmetric_error_sums(
    x: np.ndarray, codes: np.ndarray, scales: np.ndarray, group: int | None, axis: int | None
) -> ErrorSums | None:
    """Error sums of float32 `q·scale` against `x` in one fused pass (no decoded array), or
    None when the kernels are not loaded or the layout is not a plain view."""
    fast = jit.get()
    args = None if fast is None else _jit_args(np.asarray(x), scales, group, axis)
    if args is None or codes.dtype != np.int8 or not codes.flags.c_contiguous:
        return None
    a, s32, g, cols = args
    parts = _row_halves(a, s32, g, cols, codes.reshape(a.shape))
    runs = on_two_threads([lambda p=p: fast.sym_sums(p[0], p[2], p[1], g, cols) for p in parts])
    signal, noise, dec = (sum(r[i] for r in runs) for i in range(3))
    worst = max(r[3] for r in runs)
    with np.errstate(invalid="ignore"):
        cross = (signal + dec - noise) / 2
    return ErrorSums(a.size, signal, noise, dec, cross, worst)


def jit_absmax(x: np.ndarray, group: int, axis: int | None) -> np.ndarray | None:
    """`group_absmax(as_rows(x, axis), group)` from one fused pass in the tensor's own
    layout, or None when the kernels are not loaded or the layout is not a plain view."""
    fast = jit.get()
    layout = None if fast is None else _kernel_layout(x, axis)
    if layout is None:
        return None
    a, cols, channels, m = layout
    groups = -(-m // group)
    out = np.zeros((channels, groups) if cols else (groups, channels), dtype=np.float32)
    fast.sym_absmax(a, group, cols, out)
    return out if cols else np.ascontiguousarray(out.T)
