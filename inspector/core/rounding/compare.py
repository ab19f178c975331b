"""Nearest rounding against the rounding a scheme asks for, on one tensor (the A/B view).

A weight "rounds the other way" when nearest rounding puts it on one side of its true value
and the chosen method (GPTQ's codes, HQQ's shifted grid) on the other: the map the window
draws is +1 where the method rounds up and nearest down, −1 for the reverse, 0 elsewhere,
laid out rows × last axis and averaged over blocks when the tensor is larger than the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inspector.core.metrics import error_sums, sqnr_db
from inspector.core.model import Tensor
from inspector.core.quantize import quantize_tensor
from inspector.core.rounding.options import rounding_of
from inspector.core.schemes import Scheme
from inspector.core.target import Target

__all__ = ["MAP_SIDE", "RoundingComparison", "compare_rounding", "nearest_twin"]

MAP_SIDE = 512
"""Largest side of the direction map (bigger tensors are averaged over blocks)."""


@dataclass(frozen=True, eq=False)
class RoundingComparison:
    """Weight SQNR (dB) under nearest and under the method, how many of `size` weights round
    the other way, the direction map, and the method's note (e.g. why GPTQ fell back)."""

    nearest: str
    method: str
    nearest_sqnr_db: float
    method_sqnr_db: float
    flipped: int
    size: int
    direction_map: np.ndarray
    note: str


def nearest_twin(scheme: Scheme) -> Scheme:
    """The same scheme with `round=nearest` (and GPTQ's order dropped)."""
    options = {k: v for k, v in scheme.extra if k not in ("round", "order")}
    fields = {k: getattr(scheme, k) for k in ("axis", "group", "clip", "sparsity", "skip")}
    return Scheme.build(scheme.name, {**fields, **options})


def _direction(decoded: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.sign(decoded.astype(np.float64) - x).astype(np.int8)


def _as_map(values: np.ndarray, side: int) -> np.ndarray:
    """`values` as rows × last axis, block-averaged to at most `side` × `side`."""
    grid = values.reshape(1, -1) if values.ndim < 2 else values.reshape(-1, values.shape[-1])
    rows, cols = grid.shape
    fr, fc = -(-rows // side), -(-cols // side)
    padded = np.zeros((-(-rows // fr) * fr, -(-cols // fc) * fc), np.float32)
    padded[:rows, :cols] = grid
    blocks = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc)
    return blocks.mean(axis=(1, 3))


def compare_rounding(
    tensor: Tensor, scheme: Scheme, target: Target, side: int = MAP_SIDE
) -> RoundingComparison | None:
    """The A/B of `scheme` (round=hqq|gptq) against its nearest twin under `target`; None when
    the scheme rounds to nearest or leaves the tensor as it is."""
    if rounding_of(scheme) == "nearest":
        return None
    twin = nearest_twin(scheme)
    a, b = quantize_tensor(tensor, twin, target), quantize_tensor(tensor, scheme, target)
    if a.skipped is not None or b.skipped is not None:
        return None
    x = np.asarray(a.original, dtype=np.float64)
    da, db = _direction(a.decoded, x), _direction(b.decoded, x)
    flipped = (da != db) & (da != 0) & (db != 0)
    signed = np.where(flipped, db, 0).astype(np.float32)
    sums_a, sums_b = error_sums(a.original, a.decoded), error_sums(b.original, b.decoded)
    return RoundingComparison(
        nearest=twin.spec,
        method=scheme.spec,
        nearest_sqnr_db=sqnr_db(sums_a.signal, sums_a.noise),
        method_sqnr_db=sqnr_db(sums_b.signal, sums_b.noise),
        flipped=int(np.count_nonzero(flipped)),
        size=int(x.size),
        direction_map=_as_map(signed, side),
        note=b.rounding_note,
    )
