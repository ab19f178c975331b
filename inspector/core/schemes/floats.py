"""float32, float16 and bfloat16: the values re-stored in a narrower float, round to nearest even.

Values beyond the format's largest finite value saturate to it (counted as overflow) instead
of becoming ±inf. Stored bytes are the raw little-endian values; there are no parameters.
`ml_dtypes` (bfloat16) is imported only when a bfloat16 value is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core import jit
from inspector.core.chunking import CHUNK, chunk_slices
from inspector.core.metrics import ErrorSums, lut_error_sums
from inspector.core.schemes.base import CurveFit, Family, StoredArray, register_family

if TYPE_CHECKING:
    from inspector.core.schemes.scheme import Encoded, Scheme

__all__ = ["FLOATS", "FLOAT_MAX", "float_cast", "float_dtype"]

FLOAT_MAX = {"float32": float(np.finfo(np.float32).max), "float16": 65504.0}
FLOAT_MAX["bfloat16"] = float(np.float32(3.3895313892515355e38))
_BITS = {"float32": 32, "float16": 16, "bfloat16": 16}


def float_dtype(name: str) -> np.dtype:
    """numpy dtype of a float scheme name (bfloat16 from ml_dtypes)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def float_cast(x: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """RNE cast; values beyond the format's max are counted and saturated (not inf)."""
    if name == "float32":
        return x, 0
    dtype, top = float_dtype(name), FLOAT_MAX[name]
    flat = x.reshape(-1)
    out = np.empty(flat.size, dtype=dtype)
    fast = jit.get() if flat.dtype == np.float32 else None
    over = 0
    for s in chunk_slices(flat.size, CHUNK * 4):
        part = flat[s]
        if part.size and (part.max() > top or part.min() < -top):
            over += int(np.count_nonzero(part > top)) + int(np.count_nonzero(part < -top))
            part = np.clip(part, -top, top)
        if fast is not None and name == "bfloat16":
            fast.bf16_encode(np.ascontiguousarray(part).view(np.uint32), out[s].view(np.uint16))
        elif fast is not None:
            part = np.ascontiguousarray(part)
            fast.f16_encode(part, part.view(np.uint32), out[s].view(np.uint16))
        else:
            out[s] = part
    return out.reshape(x.shape), over


@lru_cache(maxsize=4)
def _float_lut(name: str) -> np.ndarray:
    """float32 value of every bit pattern of a 16-bit float format."""
    return np.arange(1 << 16, dtype=np.uint16).view(float_dtype(name)).astype(np.float32)


class FloatFamily(Family):
    """IEEE float32/float16 and bfloat16, round to nearest even, saturating."""

    id = "float"
    description = "the values in a narrower float format (round to nearest even)"

    def names(self) -> tuple[str, ...]:
        return ("float32", "float16", "bfloat16")

    def bits(self, name: str) -> int:
        return _BITS[name]

    def exact_dtype(self, name: str) -> str:
        return name

    def fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        value_range: tuple[float, float] | None,
        tensor: str = "",
    ) -> tuple[dict[str, Any], Any]:
        return {}, None

    def quantize(
        self,
        scheme: Scheme,
        x: np.ndarray,
        params: Mapping[str, Any],
        axis: int | None,
        state: Any = None,
    ) -> tuple[np.ndarray, int]:
        return float_cast(x, scheme.name)

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        return codes if codes.dtype == np.float32 else codes.astype(np.float32)

    def stored_arrays(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> tuple[StoredArray, ...]:
        n = int(np.prod(shape, dtype=np.int64))
        return (StoredArray("codes", scheme.name, shape, n * scheme.bits // 8),)

    def array_data(self, enc: Encoded) -> list[bytes | np.ndarray]:
        return [np.ascontiguousarray(enc.codes).reshape(-1).view(np.uint8)]

    def from_arrays(
        self,
        scheme: Scheme,
        shape: tuple[int, ...],
        axis: int | None,
        arrays: Sequence[np.ndarray],
    ) -> Encoded:
        from inspector.core.schemes.scheme import Encoded

        codes = np.asarray(arrays[0]).view(float_dtype(scheme.name)).reshape(shape)
        return Encoded(scheme, shape, codes, {})

    def dry_params(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> dict[str, Any]:
        return {}

    def byte_views(self, enc: Encoded) -> list[Any]:
        if np.little_endian and enc.codes.flags.c_contiguous:
            return [enc.codes.reshape(-1).view(np.uint8)]
        return [enc.to_bytes()]

    def error_sums(self, x: np.ndarray, enc: Encoded) -> ErrorSums | None:
        if jit.get() is None or enc.codes.dtype.itemsize != 2:
            return None  # numpy: a table gather is no faster than the decoded array
        return lut_error_sums(x, enc.codes.view(np.uint16), _float_lut(enc.scheme.name))

    def curve_fit(
        self, scheme: Scheme, x: np.ndarray, axis: int | None, channel: int | None
    ) -> CurveFit:
        return _FloatFit(scheme.name)


class _FloatFit(CurveFit):
    def __init__(self, name: str) -> None:
        self.name = name

    def stored(self, grid: np.ndarray) -> np.ndarray:
        return float_cast(grid, self.name)[0].astype(np.float32)

    def levels(self, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
        """Every finite value of the format in [vmin, vmax], enumerated by bit pattern.

        Sign-magnitude patterns map to ordered integers (negative values to −magnitude), so
        the values between two floats are the integers between their keys."""
        ftype = float_dtype(self.name)
        utype = np.dtype(f"u{ftype.itemsize}")
        width = utype.itemsize * 8
        magnitude = (1 << (width - 1)) - 1
        top = FLOAT_MAX[self.name]
        ends = np.clip(np.array([vmin, vmax], np.float64), -top, top).astype(np.float32)
        ends_bits: np.ndarray = ends.astype(ftype).view(utype).astype(np.int64)
        keys = np.where(ends_bits >> (width - 1), -(ends_bits & magnitude), ends_bits)
        if keys[1] - keys[0] + 1 > max_levels:
            return None
        ordered = np.arange(keys[0], keys[1] + 1, dtype=np.int64)
        patterns = np.where(ordered >= 0, ordered, (-ordered) | (1 << (width - 1)))
        out = patterns.astype(utype).view(ftype).astype(np.float32)
        return np.unique(out[np.isfinite(out)])

    def clip_range(self) -> tuple[float, float] | None:
        top = FLOAT_MAX[self.name]
        return -top, top


FLOATS = register_family(FloatFamily())
