"""1-D k-means weight sharing: a palette of 2^N float32 centroids and N-bit codes.

Fitting is exact Lloyd on sorted values with prefix sums (the clusters of a 1-D k-means are
intervals between centroid midpoints), so each iteration is O(k log n). Tensors over
`FIT_ALL` elements are fitted on a seeded sample of `FIT_SAMPLE` values plus their min and max,
keeping the cost bounded on multi-million-element tensors. Seeding is k-means++ with a fixed
seed on an evenly strided subset of the sorted values. Everything is deterministic.

With sparsity the palette reserves an exact 0.0 entry and the other 2^N − 1 centroids are fitted
on the non-zero values, so pruned weights decode to exactly zero (deep-compression style).
The palette is sorted and padded with copies of its last entry when the tensor holds fewer
distinct values than 2^N. Each value is coded to its nearest palette entry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inspector.core import jit
from inspector.core.chunking import chunk_slices, on_two_threads
from inspector.core.clipping import sample_indices

__all__ = ["FIT_ALL", "FIT_SAMPLE", "assign_codes", "fit_palette"]

FIT_ALL = 1 << 17
FIT_SAMPLE = 1 << 16
_SEED_SUBSET = 4096
_MAX_ITER = 100
_LUT_BINS = 1 << 16
_COUNT_UP_TO = 15
"""Palettes with at most this many midpoints (N ≤ 4 bits) assign by compare-and-count."""
_F32_MAX = float(np.finfo(np.float32).max)


def _fit_values(
    flat: np.ndarray, seed: int, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    if flat.size <= FIT_ALL:
        vals = flat.astype(np.float64)
    else:
        idx = sample_indices(flat.size, FIT_SAMPLE, seed)
        ends = value_range if value_range is not None else (flat.min(), flat.max())
        vals = np.concatenate([flat[idx].astype(np.float64), np.array(ends, dtype=np.float64)])
    vals.sort()
    return vals


def _seed_centers(vals: np.ndarray, k: int, seed: int) -> np.ndarray:
    sub = vals[:: max(1, vals.size // _SEED_SUBSET)]
    rng = np.random.default_rng(seed)
    first = int(rng.integers(sub.size))
    fast = jit.get()
    if fast is not None:  # same draws: one `random()` per further center, in order
        out = np.empty(k)
        got = fast.kmeans_seed(np.ascontiguousarray(sub), first, rng.random(max(k - 1, 0)), out)
        return np.unique(out[:got])
    centers = [sub[first]]
    d2 = (sub - centers[0]) ** 2
    while len(centers) < k:
        cum = np.cumsum(d2)
        total = float(cum[-1])
        if total <= 0:
            break
        pick = int(np.searchsorted(cum, rng.random() * total, side="right"))
        centers.append(sub[min(pick, sub.size - 1)])
        np.minimum(d2, (sub - centers[-1]) ** 2, out=d2)
    return np.unique(np.array(centers))


def _lloyd(vals: np.ndarray, centers: np.ndarray) -> np.ndarray:
    csum = np.concatenate([[0.0], np.cumsum(vals)])
    fast = jit.get()
    if fast is not None:  # same operations without numpy's per-iteration overhead
        return fast.lloyd(vals, csum, np.array(centers, dtype=np.float64), _MAX_ITER)
    for _ in range(_MAX_ITER):
        cuts = np.searchsorted(vals, (centers[:-1] + centers[1:]) / 2, side="right")
        edges = np.concatenate([[0], cuts, [vals.size]])
        counts = np.diff(edges)
        sums = csum[edges[1:]] - csum[edges[:-1]]
        new = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
        new.sort()
        if np.array_equal(new, centers):
            break
        centers = new
    return centers


def fit_palette(
    flat: np.ndarray,
    k: int,
    seed: int = 0,
    reserve_zero: bool = False,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """A sorted float32 palette of exactly `k` entries fitted to the flat values;
    `value_range` is their (min, max) when the caller has it (saves two passes)."""
    if reserve_zero:
        nonzero = flat[flat != 0]
        rest = fit_palette(nonzero, k - 1, seed) if nonzero.size and k > 1 else np.zeros(0)
        merged = np.sort(np.concatenate([rest, [0.0]]).astype(np.float32))
        return _pad(np.unique(merged), k)
    if flat.size == 0:
        return np.zeros(k, dtype=np.float32)
    vals = _fit_values(flat, seed, value_range)
    centers = _lloyd(vals, _seed_centers(vals, k, seed))
    return _pad(np.unique(centers.astype(np.float32)), k)


def _pad(palette: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(k, dtype=np.float32)
    out[: palette.size] = palette
    out[palette.size :] = palette[-1] if palette.size else 0.0
    return out


def _boundaries_float32(palette: np.ndarray) -> np.ndarray:
    """Midpoints between palette entries, rounded *down* to float32, so comparing a float32
    value `x > b32` is exactly `x > b64` and no float64 copy of the data is needed."""
    mid = (palette[:-1].astype(np.float64) + palette[1:].astype(np.float64)) / 2
    b32 = mid.astype(np.float32)
    over = b32.astype(np.float64) > mid
    b32[over] = np.nextafter(b32[over], np.float32(-np.inf))
    return b32


def assign_codes(flat: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 index of the nearest palette entry (the lower one at an exact midpoint).

    The code of x is the number of midpoints b with b < x. A 2^16-bin lookup table over the
    midpoints' span gives a first guess from one float32 multiply (its rounding only costs
    accuracy of the guess); exact comparisons against the midpoints then step the guesses that
    are off, so the result equals a binary search
    (`np.searchsorted`) at a fraction of its cost.
    """
    bounds = _boundaries_float32(palette)
    codes = np.zeros(flat.size, dtype=np.uint8)
    if bounds.size == 0:
        return codes
    compiled = jit.get()
    fast = compiled is not None and flat.dtype == np.float32 and flat.flags.c_contiguous
    if fast and bounds.size <= _COUNT_UP_TO:
        _on_halves(flat, codes, lambda x, c: compiled.kmeans_count(x, bounds, c))
        return codes
    lo, hi = float(bounds[0]), float(bounds[-1])
    if not hi > lo or _LUT_BINS / (hi - lo) > _F32_MAX:  # denormal span
        for s in chunk_slices(flat.size):
            codes[s] = np.searchsorted(bounds, flat[s], side="left")
        return codes
    inv = _LUT_BINS / (hi - lo)
    lo32, inv32 = np.float32(lo), np.float32(inv)
    edges = lo + np.arange(_LUT_BINS, dtype=np.float64) / inv
    lut = np.searchsorted(bounds.astype(np.float64), edges, side="left").astype(np.int32)
    upper = np.append(bounds, np.float32(np.inf))
    lower = np.insert(bounds, 0, np.float32(-np.inf))
    if fast:
        marked = _mark_unsafe(lut)
        _on_halves(
            flat,
            codes,
            lambda x, c: compiled.kmeans_assign(x, upper, lower, marked, lo32, inv32, c),
        )
        return codes
    for s in chunk_slices(flat.size):
        x = flat[s]
        with np.errstate(over="ignore"):
            idx = (x - lo32) * inv32
        np.clip(idx, 0, _LUT_BINS - 1, out=idx)
        code = lut[idx.astype(np.int32)]
        _step(x, code, upper, lower)
        codes[s] = code
    return codes


def _on_halves(flat: np.ndarray, codes: np.ndarray, run: Any) -> None:
    """`run(values, codes)` over the whole, or over two halves on two threads from 1M."""
    h = flat.size // 2 if flat.size >= 1 << 20 else flat.size
    parts = [(flat[:h], codes[:h]), (flat[h:], codes[h:])][: 1 if h == flat.size else 2]
    on_two_threads([lambda p=p: run(*p) for p in parts])


def _mark_unsafe(lut: np.ndarray) -> np.ndarray:
    """`lut` with every bin that has a midpoint within two bins of it (and both end bins)
    stored as −1 − code: values landing there (the float32 guess can be a bin off) need
    exact comparisons; every other bin's entry is already the exact code."""
    change = np.zeros(lut.size + 5, dtype=bool)
    change[2 : lut.size + 1] = lut[1:] != lut[:-1]  # between bins j, j+1: marks j-3 .. j+2
    near = np.zeros(lut.size, dtype=bool)
    for shift in range(6):
        near |= change[shift : shift + lut.size]
    near[0] = near[-1] = True
    return np.where(near, -1 - lut, lut).astype(np.int32)


def _step(x: np.ndarray, code: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> None:
    """Move each code until lower[code] < x <= upper[code] (in place)."""
    todo = np.flatnonzero(x > upper[code])
    while todo.size:
        code[todo] += 1
        todo = todo[x[todo] > upper[code[todo]]]
    todo = np.flatnonzero(x <= lower[code])
    while todo.size:
        code[todo] -= 1
        todo = todo[x[todo] <= lower[code[todo]]]
