"""Encode float32 rows into ggml block bytes, the same bytes `llama-quantize` writes.

llama-quantize converts each tensor to float32 (exactly, from F16/BF16) and calls
`ggml_quantize_chunk`, which runs `quantize_q4_K` etc. of ggml-quants.c: without an importance
matrix these run the `quantize_row_*_ref` functions, with one the `quantize_row_*_impl` ones
(a different search, weighted by the imatrix). The kernels here repeat both paths operation by
operation in float32 (`_make_quants`, `_quant_*`), so the bytes are equal; rows are independent,
so two threads give the same bytes as one.

Non-finite input is refused (llama-quantize's validation of the result refuses it too).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from . import _quant_k as qk
from . import _quant_k6 as qk6
from . import _quant_small as qs
from ._jit import table
from ._threads import THREADS, split_rows
from .types import GGMLType, ggml_type, row_nbytes

__all__ = ["IMATRIX_TYPES", "QUANTIZABLE", "quantize"]

_K = {"q2_k": qk.q2_k_rows, "q3_k": qk6.q3_k_rows, "q4_k": qk.q4_k_rows}
_K |= {"q5_k": qk.q5_k_rows, "q6_k": qk6.q6_k_rows} | qs.LEGACY_KERNELS
QUANTIZABLE: frozenset[str] = frozenset(["f32", "f16", "bf16", *_K, "iq4_nl", "iq4_xs"])
IMATRIX_TYPES: frozenset[str] = frozenset(QUANTIZABLE - {"f32", "f16", "bf16", "q8_0"})


def quantize(
    x: np.ndarray,
    type_: GGMLType | int | str,
    imatrix: np.ndarray | None = None,
    *,
    threads: int = THREADS,
) -> np.ndarray:
    """The bytes of float32 rows `x` (rows, ne0) stored as `type_`: uint8 (rows, row_nbytes).

    `imatrix` is the importance of each of the `ne0` columns (llama.cpp's imatrix entry for the
    tensor, already divided by its count); the types in IMATRIX_TYPES use it as
    `llama-quantize --imatrix` does, the others ignore it. Raises ValueError for a type we
    cannot encode, a row length that is not a multiple of the block size, non-finite values,
    or an imatrix of the wrong length or with non-finite values."""
    t = ggml_type(type_)
    if t.name not in QUANTIZABLE:
        raise ValueError(f"cannot encode ggml type {t.name} (encodable: {sorted(QUANTIZABLE)})")
    rows = _as_rows(x)
    nbytes = row_nbytes(t, rows.shape[1])
    if t.name == "f32":
        return rows.view(np.uint8).reshape(rows.shape[0], nbytes).copy()
    if t.name == "f16":  # round to nearest even; beyond ±65504 gives ±inf, as ggml's does
        with np.errstate(over="ignore"):
            return rows.astype("<f2").view(np.uint8).reshape(rows.shape[0], nbytes)
    if t.name == "bf16":
        return _bf16(rows).view(np.uint8).reshape(rows.shape[0], nbytes)
    qw = _imatrix(imatrix, rows.shape[1]) if t.name in IMATRIX_TYPES else None
    out = np.zeros((rows.shape[0], nbytes), dtype=np.uint8)
    if rows.size:
        kernel, extra = _kernel(t.name)
        weights = qw if qw is not None else np.zeros(1, dtype=np.float32)
        split_rows(
            kernel,
            rows,
            out,
            weights,
            qw is not None,
            *extra,
            values_per_row=rows.shape[1],
            threads=threads,
        )
    return out


def _as_rows(x: np.ndarray) -> np.ndarray:
    rows = np.asarray(x)
    if rows.ndim == 1:
        rows = rows.reshape(1, -1)
    if rows.ndim != 2:
        raise ValueError(f"expected rows (rows, ne0), got shape {rows.shape}")
    if rows.dtype.kind != "f":
        raise ValueError(f"expected float values, got {rows.dtype}")
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    bad = ~np.isfinite(rows)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"non-finite value {rows[r, c]} at row {r}, column {c}")
    return rows


def _imatrix(imatrix: np.ndarray | None, ne0: int) -> np.ndarray | None:
    if imatrix is None:
        return None
    qw = np.ascontiguousarray(imatrix, dtype=np.float32).reshape(-1)
    if qw.size != ne0:
        raise ValueError(f"imatrix has {qw.size} values for rows of {ne0}")
    if not np.isfinite(qw).all():
        raise ValueError("imatrix contains non-finite values")
    return qw


def _bf16(rows: np.ndarray) -> np.ndarray:
    """ggml_compute_fp32_to_bf16 on finite values: round to nearest even."""
    u = rows.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")


@cache
def _kernel(name: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    if name in _K:
        return _K[name], ()
    kernel = qs.iq4_nl_rows if name == "iq4_nl" else qs.iq4_xs_rows
    return kernel, (table("kvalues_iq4nl"),)
