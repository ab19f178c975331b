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

import numpy as np

from inspector.core.schemes import Scheme, SchemeError, parse_scheme

__all__ = ["bit_width_scheme", "clip_range", "discretization_curve", "quantization_levels"]


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
        self.fit = scheme.family.curve_fit(scheme, x, self.axis, channel)
        self.threshold = _prune_threshold(self.original, scheme.sparsity)
        self.channel_values = _channel_values(self.original, self.axis, channel)

    def stored(self, grid: np.ndarray) -> np.ndarray:
        """float32 stored value of each float32 grid value."""
        y = self.fit.stored(grid)
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
    return fit.fit.levels(float(vals.min()), float(vals.max()), max_levels)


def clip_range(
    scheme: Scheme, values: np.ndarray, channel_axis: int | None = None
) -> tuple[float, float]:
    """[lo, hi] the scheme clips the tensor to: the nudged affine range, ±(largest scale ×
    top code) for int8/int4, the palette's ends for k-means, ± the format's max for floats."""
    rng = _Fit(scheme, values, None, channel_axis).fit.clip_range()
    if rng is None:
        raise SchemeError(f"{scheme.name} has no clip range")
    return rng
