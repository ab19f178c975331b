"""Chunked iteration over big arrays, so no full-size float64 temporary is ever made.

A chunk of 2^18 elements keeps each float64 temporary at 2 MiB, which stays in cache and makes a
chunked float64 pass about as fast as one float32 pass over the whole array.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CHUNK",
    "as_float32",
    "chunk_slices",
    "finite_minmax",
    "flat_view",
    "on_two_threads",
    "split_grid",
]


CHUNK = 1 << 18


def chunk_slices(n: int, chunk: int = CHUNK) -> Iterator[slice]:
    """Consecutive slices covering `range(n)`, each at most `chunk` long."""
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


def as_float32(x: np.ndarray) -> np.ndarray:
    """`x` as a float32 array (no copy when it already is one); read-only inputs stay untouched."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float32)


def flat_view(x: np.ndarray) -> np.ndarray:
    """`x` flattened in C order: a view when `x` is contiguous, a copy otherwise."""
    return x.reshape(-1)


def finite_minmax(flat: np.ndarray) -> tuple[float, float, int]:
    """(min, max, number of non-finite values) of a flat float array, in chunks.

    NaN propagates through min/max, so the non-finite count is only taken when min or max is
    not finite: the common all-finite case costs one min and one max per chunk.
    """
    if flat.size == 0:
        return 0.0, 0.0, 0
    mins, maxs = [], []
    with np.errstate(invalid="ignore"):
        for s in chunk_slices(flat.size, CHUNK * 4):
            mins.append(flat[s].min())
            maxs.append(flat[s].max())
        mn, mx = float(np.min(mins)), float(np.max(maxs))
    if np.isfinite(mn) and np.isfinite(mx):
        return mn, mx, 0
    bad = sum(int(np.count_nonzero(~np.isfinite(flat[s]))) for s in chunk_slices(flat.size))
    return mn, mx, bad


def on_two_threads(calls: Sequence[Callable[..., Any]]) -> list[Any]:
    """Results of the calls (compiled kernels, zlib: code that releases the GIL), the second on
    another thread: same values, about half the latency when a core is free. An exception in
    either call is raised here, in the caller's thread."""
    if len(calls) == 1:
        return [calls[0]()]
    out: list[Any] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            out.append(calls[1]())
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    worker = threading.Thread(target=second)
    worker.start()
    try:
        first = calls[0]()
    finally:
        worker.join()
    if errors:
        raise errors[0]
    return [first, *out]


def split_grid(run: Callable[[np.ndarray], np.ndarray], grid: np.ndarray, n: int) -> np.ndarray:
    """`run(grid)` (a compiled kernel that releases the GIL, one result per grid row), with
    the second half of a large grid (`n` values per row) on a second thread: same values,
    half the latency when a core is free."""
    if n * len(grid) < 1 << 20:
        return run(grid)
    half = len(grid) // 2
    head, tail = on_two_threads([lambda: run(grid[:half]), lambda: run(grid[half:])])
    return np.concatenate([head, tail])
