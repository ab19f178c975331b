"""k-means palettes: `kmeansN` (N = 1…8), 2^N shared float32 values per tensor (weight sharing).

Fitting (k-means++ seeded, Lloyd iterations, deterministic) is in `kmeans_math.py`; with
sparsity one entry is reserved for the pruned zeros. Stored layout: the codes packed at N bits
(one byte per code for N = 8), then the 2^N float32 palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core import jit
from inspector.core.bitpack import pack_codes, packed_nbytes, unpack_codes
from inspector.core.metrics import ErrorSums, PackedCodes, lut_error_sums
from inspector.core.schemes.base import CurveFit, Family, StoredArray, register_family
from inspector.core.schemes.kmeans_math import assign_codes, fit_palette

if TYPE_CHECKING:
    from inspector.core.schemes.scheme import Encoded, Scheme

__all__ = ["KMEANS", "palette_decode"]


def palette_decode(codes: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """float32 `palette[codes]` (a compiled gather for uint8 codes when loaded)."""
    fast = jit.get()
    lut = np.asarray(palette, dtype=np.float32)
    if fast is None or codes.dtype != np.uint8 or not codes.flags.c_contiguous:
        return lut[codes]
    out = np.empty(codes.shape, dtype=np.float32)
    fast.lut_decode(codes.reshape(-1), lut, out.reshape(-1))
    return out


class KmeansFamily(Family):
    """A palette of 2^N float32 centroids fitted by k-means; codes index it."""

    id = "kmeans"
    description = "a palette of 2^N values fitted by k-means (weight sharing)"

    def names(self) -> tuple[str, ...]:
        return tuple(f"kmeans{n}" for n in range(1, 9))

    def names_text(self) -> str:
        return "kmeans1…kmeans8"

    def bits(self, name: str) -> int:
        return int(name[len("kmeans") :])

    def bit_choices(self, name: str) -> tuple[int, ...]:
        return tuple(range(1, 9))

    def name_for_bits(self, name: str, bits: int) -> str:
        return f"kmeans{min(max(bits, 1), 8)}"

    def fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        value_range: tuple[float, float] | None,
        tensor: str = "",
    ) -> tuple[dict[str, Any], Any]:
        palette = fit_palette(x.reshape(-1), 1 << scheme.bits, 0, scheme.sparsity > 0, value_range)
        return {"palette": palette}, None

    def quantize(
        self,
        scheme: Scheme,
        x: np.ndarray,
        params: Mapping[str, Any],
        axis: int | None,
        state: Any = None,
    ) -> tuple[np.ndarray, int]:
        return assign_codes(x.reshape(-1), params["palette"]).reshape(x.shape), 0

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        return palette_decode(codes, params["palette"])

    def stored_arrays(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> tuple[StoredArray, ...]:
        n = int(np.prod(shape, dtype=np.int64))
        packed = packed_nbytes(n, scheme.bits)
        codes = StoredArray("codes", "uint8", shape if scheme.bits == 8 else (packed,), packed)
        k = 1 << scheme.bits
        return (codes, StoredArray("palette", "float32", (k,), 4 * k))

    def array_data(self, enc: Encoded) -> list[bytes | np.ndarray]:
        palette = np.asarray(enc.params["palette"], dtype="<f4").reshape(-1).view(np.uint8)
        return [pack_codes(enc.codes, enc.scheme.bits), palette]

    def from_arrays(
        self,
        scheme: Scheme,
        shape: tuple[int, ...],
        axis: int | None,
        arrays: Sequence[np.ndarray],
    ) -> Encoded:
        from inspector.core.schemes.scheme import Encoded

        raw, palette = np.asarray(arrays[0]), np.asarray(arrays[1])
        n = int(np.prod(shape, dtype=np.int64))
        if scheme.bits == 8:
            codes = raw.reshape(shape)
        else:
            codes = unpack_codes(raw.tobytes(), scheme.bits, n).reshape(shape)
        return Encoded(scheme, shape, codes, {"palette": palette.view("<f4")})

    def dry_params(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> dict[str, Any]:
        return {"palette": np.zeros(1 << scheme.bits, np.float32)}

    def byte_views(self, enc: Encoded) -> list[Any]:
        if enc.scheme.bits == 8 and np.little_endian and enc.codes.flags.c_contiguous:
            return [enc.codes.reshape(-1).view(np.uint8), self.array_data(enc)[1]]
        return [enc.to_bytes()]

    def packed_views(self, enc: Encoded) -> list[Any] | None:
        if enc.scheme.bits == 8:
            return None
        return [PackedCodes(enc.codes, enc.scheme.bits, 0), self.array_data(enc)[1]]

    def error_sums(self, x: np.ndarray, enc: Encoded) -> ErrorSums | None:
        if jit.get() is None:  # numpy: a table gather is no faster than the decoded array
            return None
        return lut_error_sums(x, enc.codes, enc.params["palette"])

    def curve_fit(
        self, scheme: Scheme, x: np.ndarray, axis: int | None, channel: int | None
    ) -> CurveFit:
        return _PaletteFit(self.fit(scheme, x, None, None)[0]["palette"])


class _PaletteFit(CurveFit):
    def __init__(self, palette: np.ndarray) -> None:
        self.palette = palette

    def stored(self, grid: np.ndarray) -> np.ndarray:
        return np.asarray(self.palette[assign_codes(grid, self.palette)])

    def levels(self, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
        return np.unique(self.palette)

    def clip_range(self) -> tuple[float, float] | None:
        return float(self.palette[0]), float(self.palette[-1])


KMEANS = register_family(KmeansFamily())
