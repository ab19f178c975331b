"""Vectorised convolution and pooling over channels-last batches (1-D and 2-D), float32.

Windows come from `numpy.lib.stride_tricks.sliding_window_view` (no copy); a convolution is one
matmul over the im2col matrix, built a slice of the batch at a time so memory stays bounded.
Padding follows TensorFlow: "same" puts the odd extra pixel after, "causal" pads on the left.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv", "depthwise_conv", "pad_amounts", "padded_windows", "pool", "windows"]

_IM2COL_ELEMENTS = 1 << 23  # ~32 MB of float32 per im2col slice


def pad_amounts(
    sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    padding: str,
) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim, TensorFlow's rule."""
    padding = padding.lower()
    pads = []
    for n, k, s, d in zip(sizes, kernel, strides, dilation, strict=True):
        eff = (k - 1) * d + 1
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "causal":
            pads.append((eff - 1, 0))
        else:
            out = math.ceil(n / s)
            total = max((out - 1) * s + eff - n, 0)
            pads.append((total // 2, total - total // 2))
    return pads


def _pad(x: np.ndarray, pads: list[tuple[int, int]], value: float = 0.0) -> np.ndarray:
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, [(0, 0), *pads, (0, 0)], constant_values=value)


def windows(
    x: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilation: Sequence[int]
) -> np.ndarray:
    """View of shape (N, *out_spatial, C, *kernel) over an already padded x (N, *spatial, C)."""
    nd = len(kernel)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    view = sliding_window_view(x, eff, axis=tuple(range(1, nd + 1)))
    steps = (slice(None), *(slice(None, None, s) for s in strides), slice(None))
    return view[(*steps, *(slice(None, None, d) for d in dilation))]


def padded_windows(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    padding: str | list[tuple[int, int]],
) -> np.ndarray:
    """`windows` of x (N, *spatial, C) padded with zeros by TensorFlow's rule for `padding`
    ("valid", "same", "causal") or by explicit (before, after) pairs: (N, *out, C, *kernel)."""
    if isinstance(padding, str):
        padding = pad_amounts(x.shape[1:-1], kernel, strides, dilation, padding)
    return windows(_pad(x, padding), kernel, strides, dilation)


def conv(
    x: np.ndarray,
    kernel: np.ndarray,
    strides: Sequence[int],
    dilation: Sequence[int],
    padding: str,
    groups: int = 1,
) -> np.ndarray:
    """Convolution of x (N, *spatial, C) with a Keras kernel (*k, C/groups, F)."""
    nd = kernel.ndim - 2
    ksize = kernel.shape[:nd]
    x = _pad(x, pad_amounts(x.shape[1:-1], ksize, strides, dilation, padding))
    win = windows(x, ksize, strides, dilation)
    n, out_spatial = x.shape[0], win.shape[1 : 1 + nd]
    order = (0, *range(1, nd + 1), *range(nd + 2, 2 * nd + 2), nd + 1)
    cin_g, filters = kernel.shape[-2], kernel.shape[-1]
    if groups == 1:
        flat_kernel = kernel.reshape(-1, filters)
    else:
        flat_kernel = kernel.reshape(-1, cin_g, groups, filters // groups)
    per_sample = math.prod(out_spatial) * math.prod(ksize) * cin_g * groups
    step = max(1, _IM2COL_ELEMENTS // max(per_sample, 1))
    out = np.empty((n, *out_spatial, filters), np.float32)
    for start in range(0, n, step):
        cols = win[start : start + step].transpose(order)
        rows = cols.shape[0] * math.prod(out_spatial)
        if groups == 1:
            out[start : start + step] = (cols.reshape(rows, -1) @ flat_kernel).reshape(
                -1, *out_spatial, filters
            )
        else:
            cols = cols.reshape(rows, math.prod(ksize), groups, cin_g)
            res = np.einsum("mkgc,kcgf->mgf", cols, flat_kernel, optimize=True)
            out[start : start + step] = res.reshape(-1, *out_spatial, filters)
    return out


def depthwise_conv(
    x: np.ndarray,
    kernel: np.ndarray,
    strides: Sequence[int],
    dilation: Sequence[int],
    padding: str,
) -> np.ndarray:
    """Depthwise convolution, kernel (*k, C, M) -> output channels C·M ordered c·M + m.

    Accumulates one shifted, strided slice per kernel tap: memory stays at one output.
    """
    nd = kernel.ndim - 2
    ksize, (channels, mult) = kernel.shape[:nd], kernel.shape[nd:]
    x = _pad(x, pad_amounts(x.shape[1:-1], ksize, strides, dilation, padding))
    out_spatial = [
        (x.shape[1 + i] - (ksize[i] - 1) * dilation[i] - 1) // strides[i] + 1 for i in range(nd)
    ]
    out = np.zeros((x.shape[0], *out_spatial, channels, mult), np.float32)
    for tap in itertools.product(*(range(k) for k in ksize)):
        index = tuple(
            slice(t * d, t * d + (o - 1) * s + 1, s)
            for t, d, s, o in zip(tap, dilation, strides, out_spatial, strict=True)
        )
        out += x[(slice(None), *index)][..., None] * kernel[tap]
    return out.reshape(x.shape[0], *out_spatial, channels * mult)


def pool(
    x: np.ndarray, size: Sequence[int], strides: Sequence[int], padding: str, mode: str
) -> np.ndarray:
    """Max or average pooling; "same" averages only over the real (unpadded) pixels, as TF."""
    nd = len(size)
    ones = [1] * nd
    pads = pad_amounts(x.shape[1:-1], size, strides, ones, padding)
    axes = tuple(range(-nd, 0))
    if mode == "max":
        win = windows(_pad(x, pads, -np.inf), size, strides, ones)
        return win.max(axis=axes)
    total = windows(_pad(x, pads), size, strides, ones).sum(axis=axes, dtype=np.float32)
    if not any(a or b for a, b in pads):
        return total / np.float32(math.prod(size))
    mask = _pad(np.ones((1, *x.shape[1:-1], 1), np.float32), pads)
    count = windows(mask, size, strides, ones).sum(axis=axes)
    return total / count
