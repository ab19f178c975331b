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


def _safetensors_tensors(path: str):
    """(name, float32 array) of an F32 safetensors file, read with plain numpy."""
    import json
    import struct

    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    header.pop("__metadata__", None)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    for name, spec in header.items():
        begin, end = spec["data_offsets"]
        yield name, data[begin:end].view(np.float32).reshape(spec["shape"])


if __name__ == "__main__":
    # The naive reference *process*: `python naive.py MODEL.safetensors` prints its totals as
    # JSON, so whole-process timings of the CLI compare with a whole naive process.
    import json
    import sys

    print(json.dumps(naive_preview(_safetensors_tensors(sys.argv[1]))))
