"""The TF.js converter's affine (min/scale) quantization, bit for bit.

This mirrors `tensorflowjs/quantization.py` (`quantize_weights`, `_get_affine_quantization_range`)
under NumPy 2 promotion rules: every step is float64, rounding is half to even, the zero point is
nudged so 0.0 is exactly representable when it lies in the range, and the scale is *not*
recomputed after nudging. Constant tensors store codes 0, scale 1.0, min = the value.
The only generalisation is the top code, `2**bits - 1`, so affine2 … affine16 share the rule.
Work is done in chunks of `CHUNK` elements so no full-size float64 temporary is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inspector.core import jit
from inspector.core.chunking import CHUNK, chunk_slices

__all__ = ["AffineParams", "affine_decode", "affine_encode", "affine_params", "code_dtype"]


@dataclass(frozen=True)
class AffineParams:
    """`min` and `scale` as stored (float64), plus the clip interval the codes are taken from.

    `lo`/`hi` equal the nudged range `[min, qmax*scale + min]` when 0 lies in the input range,
    else the input range itself (as the converter does); `constant` marks the codes-0 case.
    `data_range` is the (min, max) of the values the parameters were fitted on, when known.
    """

    min: float
    scale: float
    lo: float
    hi: float
    qmax: int
    constant: bool = False
    data_range: tuple[float, float] | None = None


def code_dtype(bits: int) -> type[np.unsignedinteger]:
    """Smallest unsigned dtype holding codes of `bits` bits (the unpacked code array)."""
    return np.uint8 if bits <= 8 else np.uint16


def affine_params(mn: float, mx: float, bits: int) -> AffineParams:
    """Quantization parameters for a value range `[mn, mx]`, as the TF.js converter computes."""
    qmax = (1 << bits) - 1
    mn64, mx64 = np.float64(mn), np.float64(mx)
    if mn64 == mx64:
        return AffineParams(float(mn64), 1.0, float(mn64), float(mx64), qmax, constant=True)
    scale = (mx64 - mn64) / qmax
    if mn64 <= 0 <= mx64:
        zero_point = np.round((np.float64(0.0) - mn64) / scale)
        nudged_min = -zero_point * scale
        nudged_max = qmax * scale + nudged_min
    else:
        nudged_min, nudged_max = mn64, mx64
    return AffineParams(float(nudged_min), float(scale), float(nudged_min), float(nudged_max), qmax)


def affine_encode(
    flat: np.ndarray,
    p: AffineParams,
    bits: int,
) -> tuple[np.ndarray, int]:
    """Codes of a flat float array, and how many values were clipped by more than scale/2.

    The zero-point nudge moves the range by at most scale/2, so under `clip=minmax` nothing
    counts; values cut off by a narrower clip range do. `p.data_range` (the data's min, max),
    when known, skips counting if it lies inside the clip interval widened by scale/2.

    Since `lo == min`, clipping the scaled value `(w − min)/scale` to `[0, qmax]` gives the
    converter's `clip(w, lo, hi)` codes exactly (rounding is monotonic, and `(hi − min)/scale`
    rounds to qmax), one cheaper pass; the rint writes the code dtype directly.
    """
    codes = np.empty(flat.size, dtype=code_dtype(bits))
    if p.constant:
        codes[...] = 0
        clipped = sum(
            int(np.count_nonzero(flat[s] != np.float32(p.min))) for s in chunk_slices(flat.size)
        )
        return codes, clipped
    far_lo, far_hi = p.lo - p.scale / 2, p.hi + p.scale / 2
    rng = p.data_range
    count = rng is None or rng[0] < far_lo or rng[1] > far_hi
    exact_clip = p.lo == p.min
    fast = jit.get()
    if fast is not None and flat.dtype == np.float32 and flat.flags.c_contiguous:
        args = (p.min, p.scale, p.lo, p.hi, float(p.qmax), exact_clip, far_lo, far_hi, count)
        return codes, int(fast.affine_encode(flat, codes, *args))
    clipped = 0
    buf = np.empty(min(CHUNK, flat.size), dtype=np.float64)
    for s in chunk_slices(flat.size):
        t = buf[: s.stop - s.start]
        t[...] = flat[s]
        if count:
            clipped += int(np.count_nonzero(t < far_lo)) + int(np.count_nonzero(t > far_hi))
        if not exact_clip:
            np.clip(t, p.lo, p.hi, out=t)
        np.subtract(t, p.min, out=t)
        np.divide(t, p.scale, out=t)
        if exact_clip:
            np.clip(t, 0.0, float(p.qmax), out=t)
        np.rint(t, out=codes[s], casting="unsafe")
    return codes, clipped


def affine_decode(codes: np.ndarray, p: AffineParams) -> np.ndarray:
    """`float32(q*scale + min)` computed in float64, as TF.js and the converter decode."""
    flat = codes.reshape(-1)
    out = np.empty(flat.size, dtype=np.float32)
    buf = np.empty(min(CHUNK, flat.size), dtype=np.float64)
    for s in chunk_slices(flat.size):
        t = buf[: s.stop - s.start]
        t[...] = flat[s]
        t *= p.scale
        t += p.min
        with np.errstate(over="ignore"):  # beyond float32's max decodes to ±inf, as in TF.js
            out[s] = t
    return out.reshape(codes.shape)
