"""Per-family fit / quantize / dequantize / byte layout behind `Scheme` (see schemes.py).

Families: `float` (float32, float16, bfloat16), `affine` (uint8, uint16, affineN), `int8`,
`int4`, `kmeans`. `fit` computes the parameters from a tensor (after pruning), `quantize` turns
values into codes with given parameters — the curves module calls both on a grid of values, so
the curve is exactly what `encode` would store.

Stored byte layout (`to_bytes`): the packed codes, then the parameters, all little-endian:
float32/float16/bfloat16 raw values, no parameters; affine codes at `bits` bits then min, scale as
two float64 (TF.js keeps them as JSON doubles and decodes in double); int8 codes as int8 then C
float32 scales; int4 nibbles `q+8` then C×ceil(M/group) float16 scales (channel-major); kmeans
codes at N bits then the 2^N float32 palette.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import ml_dtypes
import numpy as np

from . import affine, clipping, jit, kmeans, symmetric
from .bitpack import pack_codes, packed_nbytes
from .chunking import CHUNK, chunk_slices, finite_minmax

__all__ = [
    "FLOAT_MAX",
    "codes_bytes",
    "codes_nbytes",
    "dequantize",
    "family",
    "fit",
    "float_cast",
    "params_bytes",
    "params_nbytes",
    "quantize",
    "scales_2d",
    "symmetric_qmax",
]

_FLOAT_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
}
FLOAT_MAX = {
    "float32": float(np.finfo(np.float32).max),
    "float16": 65504.0,
    "bfloat16": float(ml_dtypes.finfo(ml_dtypes.bfloat16).max),
}


def family(name: str) -> str:
    """'float', 'affine', 'int8', 'int4' or 'kmeans' for a scheme name."""
    if name in _FLOAT_DTYPES:
        return "float"
    if name in ("int8", "int4"):
        return name
    if name.startswith("kmeans"):
        return "kmeans"
    return "affine"


def symmetric_qmax(scheme: Any) -> int:
    return 127 if scheme.name == "int8" else 7


def _group(scheme: Any, rows: np.ndarray) -> int:
    return scheme.group if scheme.name == "int4" else max(1, rows.shape[0])


def _affine_fit(
    scheme: Any, flat: np.ndarray, value_range: tuple[float, float] | None
) -> affine.AffineParams:
    mn, mx = value_range if value_range is not None else finite_minmax(flat)[:2]
    data = (mn, mx)
    if scheme.clip.startswith("percentile:"):
        lo, hi = clipping.percentile_range(flat, float(scheme.clip.split(":")[1]))
        mn, mx = max(mn, lo), min(mx, hi)
    elif scheme.clip == "mse" and mn != mx:
        sample = flat[clipping.sample_indices(flat.size, clipping.MSE_SAMPLE)].astype(np.float64)
        mn, mx = clipping.shrink_range(mn, mx, _affine_best_shrink(sample, mn, mx, scheme.bits))
    return replace(affine.affine_params(mn, mx, scheme.bits), data_range=data)


def _affine_best_shrink(sample: np.ndarray, mn: float, mx: float, bits: int) -> float:
    """`clipping.MSE_GRID`'s r with the least affine round-trip MSE on the float64 sample."""
    cands = [
        affine.affine_params(*clipping.shrink_range(mn, mx, float(r)), bits)
        for r in clipping.MSE_GRID
    ]
    cols = [np.array([getattr(p, f) for p in cands]) for f in ("min", "scale", "lo", "hi")]
    fast = jit.get()
    if fast is not None:
        errors = _split_grid(
            lambda c: fast.affine_mse_grid(sample, *c.T.copy()), np.stack(cols, 1), sample.size
        )
        return float(clipping.MSE_GRID[int(np.argmin(errors))])

    def mse_of_index(i: int) -> float:
        p = cands[i]
        q = np.rint((np.clip(sample, p.lo, p.hi) - p.min) / p.scale)
        return float(np.mean((q * p.scale + p.min - sample) ** 2))

    errors = [mse_of_index(i) for i in range(len(cands))]
    return float(clipping.MSE_GRID[int(np.argmin(errors))])


def _split_grid(run: Any, grid: np.ndarray, n: int) -> np.ndarray:
    """`run(grid)` (a compiled kernel that releases the GIL, one result per grid row), with
    the second half of a large grid on a second thread: same values, half the latency when
    a core is free."""
    if n * len(grid) < 1 << 20:
        return run(grid)
    half = len(grid) // 2
    out: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: out.append(run(grid[half:])))
    worker.start()
    head = run(grid[:half])
    worker.join()
    return np.concatenate([head, out[0]])


def _symmetric_best_shrink(scheme: Any, vals: np.ndarray, absmax: np.ndarray, qmax: int) -> float:
    """`clipping.MSE_GRID`'s r with the least symmetric round-trip MSE of the float32 sample
    `vals`, whose groups' max|w| are `absmax` (one per value)."""
    grid = clipping.MSE_GRID.astype(np.float32)
    fast = jit.get()
    if fast is not None:
        half = scheme.name != "int8"
        errors = _split_grid(
            lambda g: fast.sym_mse_grid(vals, absmax, g, np.float32(qmax), half),
            grid,
            vals.size,
        )
        return float(clipping.MSE_GRID[int(np.argmin(errors))])
    scales = _symmetric_scales(scheme, absmax[None, :] * grid[:, None]).astype(np.float32)
    errors = []
    for s in scales:
        safe = np.where(s > 0, s, np.float32(1))
        q = np.clip(np.rint(vals / safe), -qmax, qmax)
        errors.append(float(np.mean((q * s.astype(np.float64) - vals) ** 2)))
    return float(clipping.MSE_GRID[int(np.argmin(errors))])


def _symmetric_scales(scheme: Any, absmax: np.ndarray) -> np.ndarray:
    if scheme.name == "int8":
        return symmetric.int8_scales(absmax)
    return symmetric.int4_scales(absmax)[0]


def _symmetric_fit(
    scheme: Any, rows: np.ndarray, x: np.ndarray | None = None, axis: int | None = None
) -> np.ndarray:
    group = _group(scheme, rows)
    fused = None if x is None else symmetric.jit_absmax(x, group, axis)
    absmax = fused if fused is not None else symmetric.group_absmax(rows, group)
    if scheme.clip.startswith("percentile:"):
        flat = x.reshape(-1) if x is not None else rows.reshape(-1)  # |w| order is moot
        cap = clipping.abs_percentile(flat, float(scheme.clip.split(":")[1]))
        absmax = np.minimum(absmax, np.float32(cap))
    elif scheme.clip == "mse" and rows.size:
        idx = clipping.sample_indices(rows.size, clipping.MSE_SAMPLE)
        m, c = np.divmod(idx, rows.shape[1])
        vals = rows[m, c].astype(np.float32)  # no reshape: a transposed view would copy
        qmax = symmetric_qmax(scheme)
        sampled_absmax = absmax[c, m // group]

        absmax = absmax * np.float32(_symmetric_best_shrink(scheme, vals, sampled_absmax, qmax))
    return _symmetric_scales(scheme, absmax)


def fit(
    scheme: Any,
    x: np.ndarray,
    axis: int | None,
    value_range: tuple[float, float] | None = None,
) -> tuple[dict[str, Any], Any]:
    """The scheme's parameters for float32 tensor `x` (already pruned), as `Encoded.params`,
    plus the family's full fitted state for `quantize` (the affine clip interval), or None.
    `value_range` is `x`'s (min, max) when the caller already has it (saves a pass)."""
    fam = family(scheme.name)
    if fam == "affine":
        p = _affine_fit(scheme, x.reshape(-1), value_range)
        return {"min": p.min, "scale": p.scale}, p
    if fam in ("int8", "int4"):
        rows = symmetric.as_rows(x, axis)
        scales = _symmetric_fit(scheme, rows, x, axis)
        if fam == "int8":
            scales = scales.reshape(-1) if scales.size else np.ones(rows.shape[1], np.float32)
        params: dict[str, Any] = {"scales": scales, "axis": axis}
        if fam == "int4":
            params["group"] = scheme.group
        return params, None
    if fam == "kmeans":
        palette = kmeans.fit_palette(
            x.reshape(-1), 1 << scheme.bits, 0, scheme.sparsity > 0, value_range
        )
        return {"palette": palette}, None
    return {}, None


def quantize(
    scheme: Any, x: np.ndarray, params: Mapping[str, Any], axis: int | None, state: Any = None
) -> tuple[np.ndarray, int]:
    """(codes shaped like `x`, overflow count) for float32 `x` with fitted `params`/`state`."""
    fam = family(scheme.name)
    if fam == "affine":
        p = state if state is not None else _affine_from(params, scheme.bits)
        codes, over = affine.affine_encode(x.reshape(-1), p, scheme.bits)
        return codes.reshape(x.shape), over
    if fam in ("int8", "int4"):
        fused = symmetric.jit_encode(
            x, params["scales"], params.get("group"), symmetric_qmax(scheme), axis
        )
        if fused is not None:
            return fused
        blocks = symmetric.block_view(x, axis, params.get("group"))
        if blocks is not None:
            scales = scales_2d(params["scales"], blocks.shape[0])
            codes, over = symmetric.block_encode(blocks, scales, symmetric_qmax(scheme))
            return codes.reshape(x.shape), over
        rows = symmetric.as_rows(x, axis)
        group = params.get("group") or max(1, rows.shape[0])
        scales = scales_2d(params["scales"], rows.shape[1])
        codes, over = symmetric.symmetric_encode(rows, scales, group, symmetric_qmax(scheme))
        # C order, so byte views, reshapes and the next stage never copy (axis 0 is a transpose)
        return np.ascontiguousarray(symmetric.from_rows(codes, x.shape, axis)), over
    if fam == "kmeans":
        return kmeans.assign_codes(x.reshape(-1), params["palette"]).reshape(x.shape), 0
    return float_cast(x, scheme.name)


def scales_2d(scales: np.ndarray, channels: int) -> np.ndarray:
    scales = np.asarray(scales)
    return scales.reshape(channels, scales.size // channels if channels else 0)


def _affine_from(params: Mapping[str, Any], bits: int) -> affine.AffineParams:
    qmax = (1 << bits) - 1
    lo, scale = float(params["min"]), float(params["scale"])
    return affine.AffineParams(lo, scale, lo, qmax * scale + lo, qmax)


def float_cast(x: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """RNE cast; values beyond the format's max are counted and saturated (not inf)."""
    dtype, top = _FLOAT_DTYPES[name], FLOAT_MAX[name]
    if name == "float32":
        return x, 0
    flat = x.reshape(-1)
    out = np.empty(flat.size, dtype=dtype)
    fast = jit.get() if name in ("float16", "bfloat16") and flat.dtype == np.float32 else None
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


def dequantize(scheme: Any, codes: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """float32 values of `codes`, shaped like the codes."""
    fam = family(scheme.name)
    if fam == "affine":
        return affine.affine_decode(codes, _affine_from(params, scheme.bits))
    if fam in ("int8", "int4"):
        axis = params["axis"]
        fused = symmetric.jit_decode(codes, params["scales"], params.get("group"), axis)
        if fused is not None:
            return fused
        blocks = symmetric.block_view(codes, axis, params.get("group"))
        if blocks is not None:
            scales = scales_2d(params["scales"], blocks.shape[0])
            return symmetric.block_decode(blocks, scales).reshape(codes.shape)
        rows = symmetric.as_rows(codes, axis)
        group = params.get("group") or max(1, rows.shape[0])
        scales = scales_2d(params["scales"], rows.shape[1])
        values = symmetric.symmetric_decode(rows, scales, group)
        return np.ascontiguousarray(symmetric.from_rows(values, codes.shape, axis))
    if fam == "kmeans":
        return _palette_decode(codes, params["palette"])
    return codes if codes.dtype == np.float32 else codes.astype(np.float32)


def _palette_decode(codes: np.ndarray, palette: np.ndarray) -> np.ndarray:
    fast = jit.get()
    lut = np.asarray(palette, dtype=np.float32)
    if fast is None or codes.dtype != np.uint8 or not codes.flags.c_contiguous:
        return lut[codes]
    out = np.empty(codes.shape, dtype=np.float32)
    fast.lut_decode(codes.reshape(-1), lut, out.reshape(-1))
    return out


def _groups(shape: tuple[int, ...], axis: int | None, group: int) -> tuple[int, int]:
    n = math.prod(shape)
    channels = shape[axis] if axis is not None else 1
    rows = n // channels if channels else 0
    return channels, -(-rows // group) if rows else 0


def params_nbytes(scheme: Any, shape: tuple[int, ...], axis: int | None) -> int:
    """Bytes of the stored parameters, from the shape alone."""
    fam = family(scheme.name)
    if fam == "affine":
        return 16
    if fam == "int8":
        return 4 * (shape[axis] if axis is not None else 1)
    if fam == "int4":
        channels, ngroups = _groups(shape, axis, scheme.group)
        return 2 * channels * ngroups
    if fam == "kmeans":
        return 4 << scheme.bits
    return 0


def codes_nbytes(scheme: Any, n: int) -> int:
    """Bytes of `n` packed codes."""
    return packed_nbytes(n, scheme.bits)


def codes_bytes(scheme: Any, codes: np.ndarray) -> bytes:
    """The packed codes as stored (little-endian)."""
    fam = family(scheme.name)
    if fam == "float":
        return np.ascontiguousarray(codes).reshape(-1).view(np.uint8).tobytes()
    if fam == "int8":
        return np.ascontiguousarray(codes, dtype=np.int8).tobytes()
    if fam == "int4":
        return pack_codes((codes.reshape(-1) + 8).astype(np.uint8), 4)
    return pack_codes(codes, scheme.bits)


def params_bytes(scheme: Any, params: Mapping[str, Any]) -> bytes:
    """The parameters as stored (little-endian), in the layout of the module docstring."""
    fam = family(scheme.name)
    if fam == "affine":
        return np.array([params["min"], params["scale"]], dtype="<f8").tobytes()
    if fam == "int8":
        return np.asarray(params["scales"], dtype="<f4").tobytes()
    if fam == "int4":
        return np.ascontiguousarray(params["scales"], dtype="<f2").tobytes()
    if fam == "kmeans":
        return np.asarray(params["palette"], dtype="<f4").tobytes()
    return b""
