"""Channel collapse: output channels a per-tensor grid leaves with at most two levels.

One scale for a whole depthwise kernel is set by its widest channel; a channel whose weights
span a small fraction of that range lands on one or two codes and stops computing anything
(the README's all-uint8 `digits_depthwise`: 33 dB per tensor, 10 % accuracy). SQNR over the
whole tensor hides it, because the wide channels dominate the energy. Counting the channels
whose values had more than two levels before and keep at most two after finds it, in O(n).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COLLAPSE_FIX",
    "COLLAPSE_LEVELS",
    "collapse_advice",
    "collapse_flagged",
    "collapse_text",
    "collapsed_channels",
]

COLLAPSE_LEVELS = 2
"""A channel keeping this many distinct values or fewer has collapsed."""

COLLAPSE_FIX = "int8"
"""The per-channel scheme that fixes a collapse: one scale per output channel, so a narrow
channel gets a grid of its own (DESIGN §3 `int8`)."""


def _more_than_two(a: np.ndarray, others: tuple[int, ...]) -> np.ndarray:
    """Per channel (the axis not in `others`): True when it holds more than two distinct
    values, i.e. some value lies strictly between its minimum and maximum. Reduces in place
    over the other axes, so a strided channel axis costs no transposed copy."""
    lo = a.min(axis=others, keepdims=True)
    hi = a.max(axis=others, keepdims=True)
    inside = np.greater(a, lo)
    inside &= np.less(a, hi)
    return np.asarray(inside.any(axis=others)).reshape(-1)


def collapsed_channels(
    original: np.ndarray, quantized: np.ndarray, axis: int | None
) -> tuple[int, int]:
    """(collapsed, channels) along `axis`: channels whose original values have more than
    `COLLAPSE_LEVELS` distinct values and whose quantized ones (decoded values, or codes where
    one code is one value within a channel) have at most that many. (0, 0) when the tensor has
    no channel axis or a single channel.

    The quantized side is scanned whole (codes are small); the original values only for the
    channels that collapsed, usually none, so the check adds little to a preview."""
    if axis is None or original.ndim < 2 or original.size == 0:
        return 0, 0
    axis %= original.ndim
    channels = original.shape[axis]
    if channels < 2 or quantized.shape != original.shape:
        return 0, 0
    if original.size // channels <= COLLAPSE_LEVELS:
        return 0, channels
    others = tuple(i for i in range(original.ndim) if i != axis)
    poor = np.flatnonzero(~_more_than_two(quantized, others))
    if poor.size == 0:
        return 0, channels
    rich = _more_than_two(np.take(original, poor, axis=axis), others)
    return int(np.count_nonzero(rich)), channels


def collapse_flagged(collapsed: int, channels: int) -> bool:
    """Worth a warning: at least two channels and at least 5 % of them collapsed (one stray
    dead channel in a wide layer is common and harmless)."""
    return collapsed >= 2 and collapsed * 20 >= channels


def collapse_text(collapsed: int, channels: int) -> str:
    """ "41 of 64 channels keep ≤ 2 levels"."""
    return f"{collapsed} of {channels} channels keep ≤ {COLLAPSE_LEVELS} levels"


def collapse_advice(scheme: str) -> str:
    """What to do about a collapse under `scheme`: the per-channel scheme, or (already per
    channel) more bits."""
    if scheme.split(":", 1)[0] == COLLAPSE_FIX:
        return "more bits or clip=mse for this tensor"
    return f"use {COLLAPSE_FIX} (one scale per output channel)"
