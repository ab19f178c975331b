"""The TF.js affine family: `uint8`, `uint16`, `affineN` (N = 2…16), one min/scale per tensor.

The maths is the official converter's, bit for bit (`affine_math.py`); `affineN` generalises the
top code to 2^N − 1. Option `clip` narrows the range first (percentile, or the shrink factor with
the least round-trip MSE on a sample).

Stored layout: the codes packed at N bits (one byte per code for N = 8, two for N = 16, little-
endian), then `min` and `scale` as two float64 scalars (TF.js keeps them as JSON doubles and
decodes in double).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core import clipping, jit
from inspector.core.bitpack import pack_codes, packed_nbytes, unpack_codes
from inspector.core.chunking import finite_minmax, split_grid
from inspector.core.metrics import ErrorSums, PackedCodes, affine_error_sums
from inspector.core.rounding import options as rounding
from inspector.core.rounding.hqq import hqq_affine
from inspector.core.schemes.affine_math import (
    AffineParams,
    affine_decode,
    affine_encode,
    affine_params,
)
from inspector.core.schemes.base import CurveFit, Family, Option, StoredArray, register_family

if TYPE_CHECKING:
    from inspector.core.schemes.scheme import Encoded, Scheme

__all__ = ["AFFINE", "CLIP", "affine_state"]

CLIP = Option(
    "clip",
    "clip",
    "minmax",
    "Clip",
    "minmax: the whole range; percentile:P: the P-th percentiles; mse: the range with the least "
    "round-trip MSE",
)
_NAMES = ("uint8", "uint16", *(f"affine{n}" for n in range(2, 17)))


def affine_state(params: Mapping[str, Any], bits: int) -> AffineParams:
    """The full affine state (clip interval) from stored min/scale."""
    qmax = (1 << bits) - 1
    lo, scale = float(params["min"]), float(params["scale"])
    return AffineParams(lo, scale, lo, qmax * scale + lo, qmax)


def _fit(scheme: Scheme, flat: np.ndarray, value_range: tuple[float, float] | None) -> AffineParams:
    mn, mx = value_range if value_range is not None else finite_minmax(flat)[:2]
    data = (mn, mx)
    if scheme.clip.startswith("percentile:"):
        lo, hi = clipping.percentile_range(flat, float(scheme.clip.split(":")[1]))
        mn, mx = max(mn, lo), min(mx, hi)
    elif scheme.clip == "mse" and mn != mx:
        sample = flat[clipping.sample_indices(flat.size, clipping.MSE_SAMPLE)].astype(np.float64)
        mn, mx = clipping.shrink_range(mn, mx, _best_shrink(sample, mn, mx, scheme.bits))
    return replace(affine_params(mn, mx, scheme.bits), data_range=data)


def _best_shrink(sample: np.ndarray, mn: float, mx: float, bits: int) -> float:
    """`clipping.MSE_GRID`'s r with the least affine round-trip MSE on the float64 sample."""
    cands = [
        affine_params(*clipping.shrink_range(mn, mx, float(r)), bits) for r in clipping.MSE_GRID
    ]
    cols = [np.array([getattr(p, f) for p in cands]) for f in ("min", "scale", "lo", "hi")]
    fast = jit.get()
    if fast is not None:
        errors = split_grid(
            lambda c: fast.affine_mse_grid(sample, *c.T.copy()), np.stack(cols, 1), sample.size
        )
        return float(clipping.MSE_GRID[int(np.argmin(errors))])

    def mse_of_index(i: int) -> float:
        p = cands[i]
        q = np.rint((np.clip(sample, p.lo, p.hi) - p.min) / p.scale)
        return float(np.mean((q * p.scale + p.min - sample) ** 2))

    errors_list = [mse_of_index(i) for i in range(len(cands))]
    return float(clipping.MSE_GRID[int(np.argmin(errors_list))])


class AffineFamily(Family):
    """The TF.js converter's min/scale rule with 2^N − 1 as top code."""

    id = "affine"
    description = "one min/scale per tensor, the TF.js converter's rule (0.0 exact)"

    def names(self) -> tuple[str, ...]:
        return _NAMES

    def names_text(self) -> str:
        return "uint8, uint16, affine2…affine16"

    def bits(self, name: str) -> int:
        return {"uint8": 8, "uint16": 16}.get(name) or int(name[len("affine") :])

    def bit_choices(self, name: str) -> tuple[int, ...]:
        return tuple(range(2, 17))

    def name_for_bits(self, name: str, bits: int) -> str:
        if self.bits(name) == bits:
            return name
        return {8: "uint8", 16: "uint16"}.get(bits, f"affine{min(max(bits, 2), 16)}")

    def options(self, name: str) -> tuple[Option, ...]:
        return (CLIP, *rounding.OPTIONS)

    def validate(self, scheme: Scheme) -> None:
        rounding.check_rounding(scheme)

    def fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        value_range: tuple[float, float] | None,
        tensor: str = "",
    ) -> tuple[dict[str, Any], Any]:
        p = _fit(scheme, x.reshape(-1), value_range)
        if scheme.option("round") == "hqq" and not p.constant and x.size:
            lo, scale = hqq_affine(x, p.min, p.scale, p.qmax)
            p = replace(p, min=lo, scale=scale, lo=lo, hi=p.qmax * scale + lo)
        return {"min": p.min, "scale": p.scale}, p

    def quantize(
        self,
        scheme: Scheme,
        x: np.ndarray,
        params: Mapping[str, Any],
        axis: int | None,
        state: Any = None,
    ) -> tuple[np.ndarray, int]:
        p = state if state is not None else affine_state(params, scheme.bits)
        codes, over = affine_encode(x.reshape(-1), p, scheme.bits)
        return codes.reshape(x.shape), over

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        return affine_decode(codes, affine_state(params, scheme.bits))

    def stored_arrays(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> tuple[StoredArray, ...]:
        n = int(np.prod(shape, dtype=np.int64))
        packed = packed_nbytes(n, scheme.bits)
        if scheme.bits in (8, 16):
            codes = StoredArray("codes", f"uint{scheme.bits}", shape, packed)
        else:
            codes = StoredArray("codes", "uint8", (packed,), packed)
        return (codes, StoredArray("min", "float64", (), 8), StoredArray("scale", "float64", (), 8))

    def array_data(self, enc: Encoded) -> list[bytes | np.ndarray]:
        p = enc.params
        return [
            pack_codes(enc.codes, enc.scheme.bits),
            np.array([p["min"]], dtype="<f8").view(np.uint8),
            np.array([p["scale"]], dtype="<f8").view(np.uint8),
        ]

    def from_arrays(
        self,
        scheme: Scheme,
        shape: tuple[int, ...],
        axis: int | None,
        arrays: Sequence[np.ndarray],
    ) -> Encoded:
        from inspector.core.schemes.scheme import Encoded

        raw, mn, scale = (np.asarray(a) for a in arrays)
        n = int(np.prod(shape, dtype=np.int64))
        if scheme.bits in (8, 16):
            codes = raw.reshape(shape)
        else:
            codes = unpack_codes(raw.tobytes(), scheme.bits, n).reshape(shape)
        return Encoded(scheme, shape, codes, {"min": float(mn), "scale": float(scale)})

    def dry_params(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> dict[str, Any]:
        return {"min": 0.0, "scale": 1.0}

    def byte_views(self, enc: Encoded) -> list[Any]:
        if enc.scheme.bits in (8, 16) and np.little_endian and enc.codes.flags.c_contiguous:
            return [enc.codes.reshape(-1).view(np.uint8), *self.array_data(enc)[1:]]
        return [enc.to_bytes()]

    def packed_views(self, enc: Encoded) -> list[Any] | None:
        if enc.scheme.bits in (8, 16):
            return None
        return [PackedCodes(enc.codes, enc.scheme.bits, 0), *self.array_data(enc)[1:]]

    def error_sums(self, x: np.ndarray, enc: Encoded) -> ErrorSums | None:
        if enc.codes.dtype.kind != "u":
            return None
        return affine_error_sums(x, enc.codes, float(enc.params["min"]), float(enc.params["scale"]))

    def step(self, enc: Encoded) -> float | None:
        return float(enc.params["scale"])

    def grid(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        if not enc.codes.any() and float(enc.params["scale"]) == 1.0:
            return None  # a constant tensor: codes 0, min = the value (nothing to choose)
        step = np.full(enc.shape, float(enc.params["scale"]))
        offset = np.full(enc.shape, float(enc.params["min"]))
        return step, offset, 0, (1 << enc.scheme.bits) - 1

    def curve_fit(
        self, scheme: Scheme, x: np.ndarray, axis: int | None, channel: int | None
    ) -> CurveFit:
        return _AffineFit(self.fit(scheme, x, None, None)[1], scheme.bits)


class _AffineFit(CurveFit):
    def __init__(self, state: AffineParams, bits: int) -> None:
        self.state, self.bits = state, bits

    def stored(self, grid: np.ndarray) -> np.ndarray:
        codes, _ = affine_encode(grid, self.state, self.bits)
        return affine_decode(codes, self.state)

    def levels(self, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
        p = self.state
        count = 1 if p.constant else p.qmax + 1
        if count > max_levels:
            return None
        return np.unique(affine_decode(np.arange(count, dtype=np.float64), p))

    def clip_range(self) -> tuple[float, float] | None:
        p = self.state
        return (p.min, p.min) if p.constant else (p.lo, p.hi)


AFFINE = register_family(AffineFamily())
