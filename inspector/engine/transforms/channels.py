"""Per-channel views of the weighted layers the transforms rescale (Keras kernel layouts).

A weighted layer computes y = act(W·x + b) with one output channel per last kernel axis. The
transforms only ever multiply one output channel (its kernel slice and bias) or one input
channel (its kernel slice) by a positive factor, so each layer kind needs four things: the
per-channel max |w| on either side and the two scalings.

- Dense `(I, O)`; Conv1D/2D (groups 1) `(*k, I, O)`.
- DepthwiseConv `(*k, C, M)`: output channel c·M + m, input channel c.
- SeparableConv: depthwise `(*k, C, M)` carries the input channels, pointwise `(*1, C·M, O)`
  the output channels (and the bias).
An input side reached through `Flatten` spans `I = positions · C` rows, row r holding channel
r mod C (channels-last, row-major): the `channels` argument is that C.
Values are computed and written in float64; the workspace stores float32, so a chain of
rescalings done on a float64 copy rounds once.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Weighted"]


@dataclass(frozen=True)
class Weighted:
    """One weighted layer: its kind and the tensor names of its kernel(s) and bias."""

    layer: str
    kind: str
    """"dense", "conv", "depthwise" or "separable"."""
    out_kernel: str
    in_kernel: str
    bias: str
    """The bias tensor's name (a name the transforms would give it when the layer has none)."""
    out_channels: int
    in_channels: int

    # ------------------------------------------------------------------ measuring

    def out_absmax(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """max |w| per output channel (float64)."""
        w = np.abs(np.asarray(values[self.out_kernel], dtype=np.float64))
        return w.reshape(-1, self.out_channels).max(axis=0)

    def in_absmax(self, values: Mapping[str, np.ndarray], channels: int) -> np.ndarray:
        """max |w| per input channel, the input seen as `channels` channels (Flatten)."""
        return np.abs(self._in_view(values, channels)).max(axis=(0, 1, 3))

    def out_range(self, values: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) of the kernel per output channel (float64), for the range views."""
        w = np.asarray(values[self.out_kernel], dtype=np.float64).reshape(-1, self.out_channels)
        return w.min(axis=0), w.max(axis=0)

    def _in_view(self, values: Mapping[str, np.ndarray], channels: int) -> np.ndarray:
        """The input-side kernel as (taps, positions, channels, outputs), a view when possible."""
        w = np.asarray(values[self.in_kernel], dtype=np.float64)
        rows = w.shape[-2]
        if rows % channels:
            raise ValueError(f"{self.layer}: {rows} input rows for {channels} channels")
        taps = int(np.prod(w.shape[:-2], dtype=np.int64))
        return w.reshape(taps, rows // channels, channels, w.shape[-1])

    # ------------------------------------------------------------------ rescaling

    def scale_out(
        self,
        values: MutableMapping[str, np.ndarray],
        factor: np.ndarray,
        shift: np.ndarray | None = None,
    ) -> None:
        """Output channel c becomes factor[c]·(W·x + b)[c] + shift[c] (a missing bias is
        created by the caller: `values[self.bias]` must exist when `shift` is given)."""
        w = np.asarray(values[self.out_kernel], dtype=np.float64)
        flat = w.reshape(-1, self.out_channels) * factor
        values[self.out_kernel] = flat.reshape(w.shape)
        if self.bias in values:
            b = np.asarray(values[self.bias], dtype=np.float64) * factor
            if shift is not None:
                b = b + shift
            values[self.bias] = b

    def scale_in(
        self, values: MutableMapping[str, np.ndarray], factor: np.ndarray, channels: int
    ) -> None:
        """Input channel c's weights multiplied by factor[c] (the previous layer's output was
        divided by it)."""
        w = np.asarray(values[self.in_kernel], dtype=np.float64)
        view = self._in_view(values, channels) * factor[None, None, :, None]
        values[self.in_kernel] = view.reshape(w.shape)

    def in_to_out(self, values: Mapping[str, np.ndarray], delta: np.ndarray) -> np.ndarray:
        """The change of each output channel when input channel c rises by delta[c] at every
        position and tap (no padding): Σ W·delta, shape (out_channels,)."""
        view = self._in_view(values, len(delta))
        if self.kind == "dense" or self.kind == "conv":
            return np.einsum("tpco,c->o", view, delta)
        per = np.einsum("tpcm,c->cm", view, delta).reshape(-1)
        if self.kind == "depthwise":
            return per
        pw = np.asarray(values[self.out_kernel], dtype=np.float64).reshape(-1, self.out_channels)
        return per @ pw
