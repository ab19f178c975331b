"""Clip-range selection (`clip=minmax|percentile:P|mse`) and magnitude pruning (`sparsity=S`).

- `percentile:P` (50 < P ≤ 100): affine schemes clip to the `[100−P, P]` percentiles of the
  values (two-sided, so a skewed tensor keeps its asymmetry); symmetric schemes (int8, int4) cap
  every channel's/group's max|w| at the P-th percentile of |w| over the whole tensor. Tensors
  over `EXACT_LIMIT` elements take the percentile of a seeded sample of that many values
  (`np.percentile` selects by partition, linear in the sample: ~2 ms, where the whole of a
  4M-element tensor took ~60 ms; a 262144-value sample puts ~260 values above the 99.9th
  percentile, so the estimate is within a few percent of the tail's spread).
- `mse`: a shrink factor r of the full range (affine: toward 0 when 0 is inside the range, else
  toward the end nearest 0; symmetric: every max|w| times r) is chosen from `MSE_GRID` by the
  MSE on a seeded sample of at most `MSE_SAMPLE` values. Deterministic, bounded cost; ties go
  to the larger r (less clipping).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import jit
from .chunking import chunk_slices

__all__ = [
    "EXACT_LIMIT",
    "MSE_GRID",
    "MSE_SAMPLE",
    "abs_percentile",
    "best_shrink",
    "percentile_range",
    "prune",
    "sample_indices",
    "shrink_range",
]

EXACT_LIMIT = 1 << 18
MSE_SAMPLE = 1 << 15
MSE_GRID = np.linspace(1.0, 0.25, 61)


def sample_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
    """All of `range(n)` when `n ≤ size`, else `size` seeded random indices, sorted and
    distinct: one uniform pick in each of `size` equal strata (stratified, so no sort pass;
    ~1 ms for 262144 indices where sorting random ones took ~11 ms)."""
    if n <= size:
        return np.arange(n)
    starts = np.arange(size + 1, dtype=np.int64) * n // size
    widths = np.diff(starts)
    return starts[:-1] + (np.random.default_rng(seed).random(size) * widths).astype(np.int64)


def _values_for_stats(flat: np.ndarray) -> np.ndarray:
    if flat.size <= EXACT_LIMIT:
        return flat
    return flat[sample_indices(flat.size, EXACT_LIMIT)]


def percentile_range(flat: np.ndarray, p: float) -> tuple[float, float]:
    """The `[100−p, p]` percentiles of the values (linear interpolation); (0, 0) when empty."""
    if flat.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(_values_for_stats(flat), [100.0 - p, p])
    return float(lo), float(hi)


def abs_percentile(flat: np.ndarray, p: float) -> float:
    """The p-th percentile of |values|; 0 when there are none."""
    if flat.size == 0:
        return 0.0
    return float(np.percentile(np.abs(_values_for_stats(flat)), p))


def shrink_range(mn: float, mx: float, r: float) -> tuple[float, float]:
    """`[mn, mx]` shrunk by factor r toward 0 (or toward the end nearest 0)."""
    if mn <= 0 <= mx:
        return mn * r, mx * r
    if mn > 0:
        return mn, mn + (mx - mn) * r
    return mx - (mx - mn) * r, mx


def best_shrink(mse_of: Callable[[float], float]) -> float:
    """The r of `MSE_GRID` with the smallest `mse_of(r)`; the first (largest r) on ties."""
    errors = [mse_of(float(r)) for r in MSE_GRID]
    return float(MSE_GRID[int(np.argmin(errors))])


def prune(flat: np.ndarray, sparsity: float) -> np.ndarray:
    """A float32 copy with the `floor(sparsity*n)` smallest-|w| values set to 0.

    Ties at the threshold are broken by position (earliest first) so exactly that many values
    are zeroed and the result is deterministic. The compiled path selects the threshold by a
    radix select on the float bits (2 counting passes and the output pass; no |w| copy,
    no partition).
    """
    k = int(np.floor(sparsity * flat.size))
    fast = jit.get()
    if fast is not None and k > 0 and flat.dtype == np.float32 and flat.ndim == 1:
        src = np.ascontiguousarray(flat)
        bits = src.view(np.uint32)
        thr, ties = fast.radix_select(bits, k)
        out = np.empty_like(src)
        fast.prune(src, bits, thr, ties, out)
        return out
    out = np.array(flat, dtype=np.float32, copy=True)
    if k <= 0:
        return out
    mags = np.abs(out)
    threshold = np.partition(mags, k - 1)[k - 1]
    remaining = k
    for s in chunk_slices(out.size):
        part, m = out[s], mags[s]
        below = m < threshold
        remaining -= int(np.count_nonzero(below))
        part[below] = 0
    for s in chunk_slices(out.size):
        if remaining <= 0:
            break
        part, m = out[s], mags[s]
        ties = np.flatnonzero(m == threshold)[:remaining]
        part[ties] = 0
        remaining -= ties.size
    return out
