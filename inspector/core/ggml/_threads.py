"""Run a nogil numba kernel over row ranges on two threads (the bytes do not depend on it:
every row, or block, is computed independently as in llama.cpp's chunked quantization)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["THREADS", "split_rows"]

THREADS = 2
_MIN_VALUES = 1 << 20  # below ~1M values a second thread costs more than it saves


def split_rows(
    kernel: Callable[..., Any],
    src: np.ndarray,
    dst: np.ndarray,
    *extra: Any,
    values_per_row: int,
    threads: int = THREADS,
) -> None:
    """`kernel(src[a:b], dst[a:b], *extra)` over `threads` contiguous row ranges."""
    rows = src.shape[0]
    if threads < 2 or rows < 2 or rows * values_per_row < _MIN_VALUES:
        kernel(src, dst, *extra)
        return
    bounds = np.linspace(0, rows, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        futures = [
            pool.submit(kernel, src[a:b], dst[a:b], *extra)
            for a, b in itertools.pairwise(bounds)
            if b > a
        ]
        for f in futures:
            f.result()
