"""Discretization curves (original value → stored value), quantization levels and clip ranges.

Every function fits the scheme's parameters on the tensor exactly as `Scheme.encode` does
(same pruning, clip search, affine min/scale, per-channel/per-group scales, k-means palette)
and then quantizes the requested values with them, so a curve evaluated at the tensor's own
values equals `decode(encode(tensor))`. Non-finite values are left out of the fit (plots only).

Per-channel schemes: with `channel` given, the curve uses that channel's scale (int4: the
largest group scale of the channel, which covers the channel's whole range); without it, the
largest scale of the tensor. With sparsity, values whose |x| is below the pruning threshold
(the k-th smallest |w|) store 0.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np

from . import affine, codecs, kmeans, symmetric
from .schemes import Scheme, SchemeError, parse_scheme

__all__ = ["bit_width_scheme", "clip_range", "discretization_curve", "quantization_levels"]

_FLOAT_VIEW = {"float32": (np.float32, np.uint32), "float16": (np.float16, np.uint16)}
_FLOAT_VIEW["bfloat16"] = (ml_dtypes.bfloat16, np.uint16)


def bit_width_scheme(label: str) -> Scheme:
    """The scheme behind a bit-width label: "16" → uint16, "8" → uint8, "N" → affineN
    (2 ≤ N ≤ 16); any other label is parsed as a scheme spec ("float16", "bfloat16", …)."""
    text = label.strip()
    if re.fullmatch(r"\d+", text):
        bits = int(text)
        if not 2 <= bits <= 16:
            raise SchemeError(f"bit width must be 2…16, got {label!r}")
        return parse_scheme({8: "uint8", 16: "uint16"}.get(bits, f"affine{bits}"))
    return parse_scheme(text)


class _Fit:
    """A scheme's parameters fitted on a tensor, restricted to one channel when asked."""

    def __init__(
        self, scheme: Scheme, values: np.ndarray, channel: int | None, axis: int | None
    ) -> None:
        x = np.asarray(values)
        with np.errstate(over="ignore"):  # float64 beyond float32's range: ±inf, dropped below
            x = x.astype(np.float32) if x.dtype != np.float32 else x
        if not np.all(np.isfinite(x)):
            x = x[np.isfinite(x)]
        self.scheme = scheme
        self.original = x
        x = scheme.prepare(x)
        self.axis = scheme.resolve_axis(x.shape, axis)
        self.params, self.state = codecs.fit(scheme, x, self.axis)
        self.threshold = _prune_threshold(self.original, scheme.sparsity)
        self.step: float | None = None
        if scheme.family in ("int8", "int4"):
            channels = x.shape[self.axis] if self.axis is not None else 1
            scales = codecs.scales_2d(self.params["scales"], channels).astype(np.float32)
            if channel is not None and self.axis is not None and 0 <= channel < channels:
                scales = scales[channel]
            self.step = float(scales.max()) if scales.size else 1.0
        self.channel_values = _channel_values(self.original, self.axis, channel)

    def stored(self, grid: np.ndarray) -> np.ndarray:
        """float32 stored value of each float32 grid value."""
        fam = self.scheme.family
        if fam == "affine":
            codes, _ = affine.affine_encode(grid, self.state, self.scheme.bits)
            y = affine.affine_decode(codes, self.state)
        elif fam in ("int8", "int4"):
            rows = grid.reshape(-1, 1)
            s = np.array([[self.step]], np.float32)
            q = codecs.symmetric_qmax(self.scheme)
            codes, _ = symmetric.symmetric_encode(rows, s, max(1, rows.shape[0]), q)
            y = symmetric.symmetric_decode(codes, s, max(1, rows.shape[0])).reshape(-1)
        elif fam == "kmeans":
            palette = self.params["palette"]
            y = palette[kmeans.assign_codes(grid, palette)]
        else:
            y = codecs.float_cast(grid, self.scheme.name)[0].astype(np.float32)
        if self.threshold > 0:
            y = np.where(np.abs(grid) < self.threshold, np.float32(0), y)
        return y


def _prune_threshold(x: np.ndarray, sparsity: float) -> float:
    k = int(np.floor(sparsity * x.size))
    if k <= 0:
        return 0.0
    return float(np.partition(np.abs(x.reshape(-1)), k - 1)[k - 1])


def _channel_values(x: np.ndarray, axis: int | None, channel: int | None) -> np.ndarray:
    if axis is None or channel is None or not 0 <= channel < x.shape[axis]:
        return x.reshape(-1)
    return np.take(x, channel, axis=axis).reshape(-1)


def discretization_curve(
    scheme: Scheme,
    values: np.ndarray,
    lo: float,
    hi: float,
    n: int = 4001,
    channel: int | None = None,
    channel_axis: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): x = `n` float32 values evenly spaced over [lo, hi], y = the float32 value the
    scheme stores for each when fitted on `values` (a staircase; flat beyond the clip range)."""
    grid = np.linspace(lo, hi, n).astype(np.float32)
    return grid, _Fit(scheme, values, channel, channel_axis).stored(grid)


def quantization_levels(
    scheme: Scheme,
    values: np.ndarray,
    channel: int | None = None,
    channel_axis: int | None = None,
    max_levels: int = 65536,
) -> np.ndarray | None:
    """Sorted float32 values the scheme can store within the tensor's (or channel's) range,
    widened by half a step; None when there are more than `max_levels` of them."""
    fit = _Fit(scheme, values, channel, channel_axis)
    vals = fit.channel_values
    if vals.size == 0:
        return np.zeros(0, np.float32)
    vmin, vmax = float(vals.min()), float(vals.max())
    fam = scheme.family
    if fam == "affine":
        p = fit.state
        count = 1 if p.constant else p.qmax + 1
        if count > max_levels:
            return None
        levels = affine.affine_decode(np.arange(count, dtype=np.float64), p)
        return np.unique(levels)
    if fam in ("int8", "int4"):
        q = codecs.symmetric_qmax(scheme)
        with np.errstate(over="ignore"):  # a top level past float32's max is ±inf, cut below
            levels = np.arange(-q, q + 1, dtype=np.float32) * np.float32(fit.step)
        half = fit.step / 2
        wide = levels.astype(np.float64)
        return levels[(wide >= vmin - half) & (wide <= vmax + half)]
    if fam == "kmeans":
        return np.unique(fit.params["palette"])
    return _float_levels(scheme.name, vmin, vmax, max_levels)


def _float_levels(name: str, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
    """Every finite value of the float format in [vmin, vmax], enumerated by bit pattern.

    Sign-magnitude patterns map to ordered integers (negative values to −magnitude), so the
    values between two floats are the integers between their keys.
    """
    ftype, utype = _FLOAT_VIEW[name]
    width = np.dtype(utype).itemsize * 8
    magnitude = (1 << (width - 1)) - 1
    top = codecs.FLOAT_MAX[name]
    ends = np.clip(np.array([vmin, vmax], np.float64), -top, top).astype(np.float32)
    ends = ends.astype(ftype).view(utype).astype(np.int64)
    keys = np.where(ends >> (width - 1), -(ends & magnitude), ends)
    if keys[1] - keys[0] + 1 > max_levels:
        return None
    ordered = np.arange(keys[0], keys[1] + 1, dtype=np.int64)
    patterns = np.where(ordered >= 0, ordered, (-ordered) | (1 << (width - 1)))
    out = patterns.astype(utype).view(ftype).astype(np.float32)
    return np.unique(out[np.isfinite(out)])


def clip_range(
    scheme: Scheme, values: np.ndarray, channel_axis: int | None = None
) -> tuple[float, float]:
    """[lo, hi] the scheme clips the tensor to: the nudged affine range, ±(largest scale ×
    top code) for int8/int4, the palette's ends for k-means, ± the format's max for floats."""
    fam = scheme.family
    if fam == "float":
        top = codecs.FLOAT_MAX[scheme.name]
        return -top, top
    fit = _Fit(scheme, values, None, channel_axis)
    if fam == "affine":
        p = fit.state
        return (p.min, p.min) if p.constant else (p.lo, p.hi)
    if fam == "kmeans":
        palette = fit.params["palette"]
        return float(palette[0]), float(palette[-1])
    top = float(np.float32(fit.step)) * codecs.symmetric_qmax(scheme)
    return -top, top
