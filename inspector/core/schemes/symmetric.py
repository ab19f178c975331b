"""Symmetric integer family: `int8` per output channel and `int4` per group (GGUF Q4_0-like).

The maths (rows × channels view, scales, fused kernels) is in `symmetric_math.py`. int8: one
float32 scale max|w|/127 per channel, codes −127…127. int4: one float16 scale max|w|/7 per
group of `group` consecutive values along the input axis of a channel, codes −7…7. Option `clip`
caps max|w| first (percentile of |w|, or the shrink factor with the least round-trip MSE).

Stored layout: int8 codes as int8 then C float32 scales; int4 nibbles `q + 8` (first code in the
low nibble) then C×ceil(M/group) float16 scales, channel-major.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core import clipping, jit
from inspector.core.bitpack import pack_codes, packed_nbytes, unpack_codes
from inspector.core.chunking import split_grid
from inspector.core.metrics import ErrorSums, PackedCodes
from inspector.core.rounding import options as rounding
from inspector.core.rounding.hqq import hqq_symmetric
from inspector.core.schemes import symmetric_math as sm
from inspector.core.schemes.affine import CLIP
from inspector.core.schemes.base import CurveFit, Family, Option, StoredArray, register_family

if TYPE_CHECKING:
    from inspector.core.schemes.scheme import Encoded, Scheme

__all__ = ["AXIS", "GROUP", "SYMMETRIC", "scales_2d"]

AXIS = Option(
    "axis",
    "int",
    None,
    "Channel axis",
    "The axis with one scale per index (default: the layout's output axis)",
)
GROUP = Option("group", "int", 32, "Group size", "Values per scale along the input axis", 1)
_QMAX = {"int8": 127, "int4": 7}


def scales_2d(scales: np.ndarray, channels: int) -> np.ndarray:
    """Scales as (channels, groups)."""
    scales = np.asarray(scales)
    return scales.reshape(channels, scales.size // channels if channels else 0)


def _group(scheme: Scheme, rows: np.ndarray) -> int:
    return scheme.group if scheme.name == "int4" and scheme.group else max(1, rows.shape[0])


def _scales(scheme: Scheme, absmax: np.ndarray) -> np.ndarray:
    if scheme.name == "int8":
        return sm.int8_scales(absmax)
    return sm.int4_scales(absmax)[0]


def _best_shrink(scheme: Scheme, vals: np.ndarray, absmax: np.ndarray, qmax: int) -> float:
    """`clipping.MSE_GRID`'s r with the least symmetric round-trip MSE of the float32 sample
    `vals`, whose groups' max|w| are `absmax` (one per value)."""
    grid = clipping.MSE_GRID.astype(np.float32)
    fast = jit.get()
    if fast is not None:
        half = scheme.name != "int8"
        errors = split_grid(
            lambda g: fast.sym_mse_grid(vals, absmax, g, np.float32(qmax), half), grid, vals.size
        )
        return float(clipping.MSE_GRID[int(np.argmin(errors))])
    scales = _scales(scheme, absmax[None, :] * grid[:, None]).astype(np.float32)
    errors_list = []
    for s in scales:
        safe = np.where(s > 0, s, np.float32(1))
        q = np.clip(np.rint(vals / safe), -qmax, qmax)
        errors_list.append(float(np.mean((q * s.astype(np.float64) - vals) ** 2)))
    return float(clipping.MSE_GRID[int(np.argmin(errors_list))])


def _fit_scales(scheme: Scheme, rows: np.ndarray, x: np.ndarray, axis: int | None) -> np.ndarray:
    group = _group(scheme, rows)
    fused = sm.jit_absmax(x, group, axis)
    absmax = fused if fused is not None else sm.group_absmax(rows, group)
    if scheme.clip.startswith("percentile:"):
        cap = clipping.abs_percentile(x.reshape(-1), float(scheme.clip.split(":")[1]))
        absmax = np.minimum(absmax, np.float32(cap))
    elif scheme.clip == "mse" and rows.size:
        idx = clipping.sample_indices(rows.size, clipping.MSE_SAMPLE)
        m, c = np.divmod(idx, rows.shape[1])
        vals = rows[m, c].astype(np.float32)  # no reshape: a transposed view would copy
        sampled = absmax[c, m // group]
        absmax = absmax * np.float32(_best_shrink(scheme, vals, sampled, _QMAX[scheme.name]))
    return _scales(scheme, absmax)


def _groups(shape: tuple[int, ...], axis: int | None, group: int) -> tuple[int, int]:
    n = math.prod(shape)
    channels = shape[axis] if axis is not None else 1
    rows = n // channels if channels else 0
    return channels, -(-rows // group) if rows else 0


class SymmetricFamily(Family):
    """Signed codes ±qmax with one scale per channel (int8) or per group (int4)."""

    id = "symmetric"
    clip_bounds = "magnitude"
    description = "signed codes, one scale per output channel (int8) or per group (int4)"

    def names(self) -> tuple[str, ...]:
        return ("int8", "int4")

    def bits(self, name: str) -> int:
        return 8 if name == "int8" else 4

    def options(self, name: str) -> tuple[Option, ...]:
        own = (AXIS, GROUP, CLIP) if name == "int4" else (AXIS, CLIP)
        return (*own, *rounding.OPTIONS)

    def validate(self, scheme: Scheme) -> None:
        rounding.check_rounding(scheme)

    @property
    def per_channel(self) -> bool:
        return True

    def fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        value_range: tuple[float, float] | None,
        tensor: str = "",
    ) -> tuple[dict[str, Any], Any]:
        rows = sm.as_rows(x, axis)
        scales = _fit_scales(scheme, rows, x, axis)
        if scheme.option("round") == "hqq" and rows.size:
            group, qmax = _group(scheme, rows), _QMAX[scheme.name]
            tuned = hqq_symmetric(rows, scales_2d(scales, rows.shape[1]), group, qmax)
            scales = tuned.reshape(scales.shape)
        if scheme.name == "int8":
            scales = scales.reshape(-1) if scales.size else np.ones(rows.shape[1], np.float32)
            return {"scales": scales, "axis": axis}, None
        return {"scales": scales, "axis": axis, "group": scheme.group}, None

    def quantize(
        self,
        scheme: Scheme,
        x: np.ndarray,
        params: Mapping[str, Any],
        axis: int | None,
        state: Any = None,
    ) -> tuple[np.ndarray, int]:
        qmax, group = _QMAX[scheme.name], params.get("group")
        fused = sm.jit_encode(x, params["scales"], group, qmax, axis)
        if fused is not None:
            return fused
        blocks = sm.block_view(x, axis, group)
        if blocks is not None:
            scales = scales_2d(params["scales"], blocks.shape[0])
            codes, over = sm.block_encode(blocks, scales, qmax)
            return codes.reshape(x.shape), over
        rows = sm.as_rows(x, axis)
        scales = scales_2d(params["scales"], rows.shape[1])
        codes, over = sm.symmetric_encode(rows, scales, group or max(1, rows.shape[0]), qmax)
        # C order, so byte views, reshapes and the next stage never copy (axis 0 is a transpose)
        return np.ascontiguousarray(sm.from_rows(codes, x.shape, axis)), over

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        axis, group = params["axis"], params.get("group")
        fused = sm.jit_decode(codes, params["scales"], group, axis)
        if fused is not None:
            return fused
        blocks = sm.block_view(codes, axis, group)
        if blocks is not None:
            scales = scales_2d(params["scales"], blocks.shape[0])
            return sm.block_decode(blocks, scales).reshape(codes.shape)
        rows = sm.as_rows(codes, axis)
        scales = scales_2d(params["scales"], rows.shape[1])
        values = sm.symmetric_decode(rows, scales, group or max(1, rows.shape[0]))
        return np.ascontiguousarray(sm.from_rows(values, codes.shape, axis))

    def stored_arrays(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> tuple[StoredArray, ...]:
        n = math.prod(shape)
        if scheme.name == "int8":
            channels = shape[axis] if axis is not None else 1
            return (
                StoredArray("codes", "int8", shape, n),
                StoredArray("scale", "float32", (channels,), 4 * channels),
            )
        packed = packed_nbytes(n, 4)
        channels, ngroups = _groups(shape, axis, scheme.group or 32)
        scales = channels * ngroups
        return (
            StoredArray("codes", "uint8", (packed,), packed),
            StoredArray("scale", "float16", (scales,), 2 * scales),
        )

    def array_data(self, enc: Encoded) -> list[bytes | np.ndarray]:
        if enc.scheme.name == "int8":
            codes = np.ascontiguousarray(enc.codes, dtype=np.int8).reshape(-1).view(np.uint8)
            return [codes, np.asarray(enc.params["scales"], dtype="<f4").reshape(-1).view(np.uint8)]
        nibbles = pack_codes((enc.codes.reshape(-1) + 8).astype(np.uint8), 4)
        scales = np.ascontiguousarray(enc.params["scales"], dtype="<f2").reshape(-1)
        return [nibbles, scales.view(np.uint8)]

    def from_arrays(
        self,
        scheme: Scheme,
        shape: tuple[int, ...],
        axis: int | None,
        arrays: Sequence[np.ndarray],
    ) -> Encoded:
        from inspector.core.schemes.scheme import Encoded

        raw, scales = np.asarray(arrays[0]), np.asarray(arrays[1])
        if scheme.name == "int8":
            codes = raw.view(np.int8).reshape(shape)
            return Encoded(scheme, shape, codes, {"scales": scales.view("<f4"), "axis": axis})
        group = scheme.group or 32
        n = math.prod(shape)
        codes = (unpack_codes(raw.tobytes(), 4, n).astype(np.int8) - 8).reshape(shape)
        s2 = scales.view("<f2").reshape(_groups(shape, axis, group))
        return Encoded(scheme, shape, codes, {"scales": s2, "axis": axis, "group": group})

    def dry_params(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> dict[str, Any]:
        if scheme.name == "int8":
            channels = shape[axis] if axis is not None else 1
            return {"scales": np.zeros(channels, np.float32), "axis": axis}
        group = scheme.group or 32
        scales = np.zeros(_groups(shape, axis, group), np.float16)
        return {"scales": scales, "axis": axis, "group": group}

    def byte_views(self, enc: Encoded) -> list[Any]:
        if enc.scheme.name == "int8" and np.little_endian and enc.codes.flags.c_contiguous:
            return self.array_data(enc)
        return [enc.to_bytes()]

    def packed_views(self, enc: Encoded) -> list[Any] | None:
        if enc.scheme.name == "int8":
            return None
        return [PackedCodes(enc.codes, 4, 8), self.array_data(enc)[1]]

    def error_sums(self, x: np.ndarray, enc: Encoded) -> ErrorSums | None:
        if jit.get() is None:  # numpy: the decoded array is as fast
            return None
        p = enc.params
        return sm.symmetric_error_sums(x, enc.codes, p["scales"], p.get("group"), p["axis"])

    def step(self, enc: Encoded) -> float | None:
        s = np.asarray(enc.params["scales"], dtype=np.float64)
        return float(np.sqrt(np.mean(s * s))) if s.size else None

    def grid(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        ones = np.ones(enc.shape, dtype=np.int8)  # decoding code 1 gives each value's scale
        step = np.asarray(self.dequantize(enc.scheme, ones, enc.params), dtype=np.float64)
        qmax = _QMAX[enc.scheme.name]
        return step.reshape(enc.shape), np.zeros(enc.shape), -qmax, qmax

    def curve_fit(
        self, scheme: Scheme, x: np.ndarray, axis: int | None, channel: int | None
    ) -> CurveFit:
        params = self.fit(scheme, x, axis, None)[0]
        channels = x.shape[axis] if axis is not None else 1
        scales = scales_2d(params["scales"], channels).astype(np.float32)
        if channel is not None and axis is not None and 0 <= channel < channels:
            scales = scales[channel]
        step = float(scales.max()) if scales.size else 1.0
        return _SymmetricFit(step, _QMAX[scheme.name])


class _SymmetricFit(CurveFit):
    def __init__(self, step: float, qmax: int) -> None:
        self.step, self.qmax = step, qmax

    def stored(self, grid: np.ndarray) -> np.ndarray:
        rows = grid.reshape(-1, 1)
        s = np.array([[self.step]], np.float32)
        codes, _ = sm.symmetric_encode(rows, s, max(1, rows.shape[0]), self.qmax)
        return np.asarray(sm.symmetric_decode(codes, s, max(1, rows.shape[0]))).reshape(-1)

    def levels(self, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
        q = self.qmax
        with np.errstate(over="ignore"):  # a top level past float32's max is ±inf, cut below
            levels = np.arange(-q, q + 1, dtype=np.float32) * np.float32(self.step)
        half = self.step / 2
        wide = levels.astype(np.float64)
        return levels[(wide >= vmin - half) & (wide <= vmax + half)]

    def clip_range(self) -> tuple[float, float] | None:
        top = float(np.float32(self.step)) * self.qmax
        return -top, top


SYMMETRIC = register_family(SymmetricFamily())
