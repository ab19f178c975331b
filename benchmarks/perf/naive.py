"""The naive reference the preview is compared with: the obvious numpy (float64 temporaries of
the whole tensor, the converter's maths), a whole-tensor `np.histogram` and full zlib-6."""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["naive_preview"]


def naive_uint8(w: np.ndarray) -> dict[str, float]:
    x = np.asarray(w, dtype=np.float64).reshape(-1)
    mn, mx = x.min(), x.max()
    scale = (mx - mn) / 255 if mx > mn else 1.0
    lo = mn
    if mn <= 0 <= mx:
        lo = -np.round(-mn / scale) * scale
    codes = np.round((np.clip(x, lo, 255 * scale + lo) - lo) / scale).astype(np.uint8)
    dec = (codes * scale + lo).astype(np.float32).astype(np.float64)
    err = x - dec
    np.histogram(x, 256)
    return {
        "noise": float(np.sum(err**2)),
        "signal": float(np.sum(x**2)),
        "gzip": len(zlib.compress(codes.tobytes(), 6)),
        "codes": codes,
    }


def naive_preview(tensors) -> dict[str, float]:
    """Sum of naive per-tensor figures over (name, array) pairs."""
    noise = signal = gz = 0.0
    for _, w in tensors:
        r = naive_uint8(w)
        noise, signal, gz = noise + r["noise"], signal + r["signal"], gz + r["gzip"]
    return {"noise": noise, "signal": signal, "gzip": gz}
