"""Decode ggml tensor bytes to float32, exactly as llama.cpp (and the `gguf` package's
`gguf.quants.dequantize`) does, for every type either of them decodes.

Block types are decoded by numba kernels (`_dequant_*`) that repeat `dequantize_row_*` of
ggml-quants.c operation by operation; f16/bf16 are exact widenings. The integer types (i8…i64)
and f64, which llama.cpp never dequantizes, are converted to the nearest float32 so a preview can
show them; q8_1 has no decoder in ggml and is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from . import _dequant_iq as iq
from . import _dequant_k as kq
from . import _dequant_small as sq
from ._jit import table
from ._threads import split_rows
from .types import GGMLType, ggml_type, row_nbytes

__all__ = ["DECODABLE", "dequantize"]

_PLAIN = {"f32": "<f4", "f16": "<f2", "i8": "i1", "i16": "<i2", "i32": "<i4", "i64": "<i8"}
_PLAIN |= {"f64": "<f8"}
_BLOCK = [
    *("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q1_0", "q2_0", "mxfp4", "nvfp4", "iq4_nl"),
    *("q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k", "tq1_0", "tq2_0", "iq4_xs"),
    *("iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m"),
]
DECODABLE: frozenset[str] = frozenset([*_PLAIN, "bf16", *_BLOCK])


def dequantize(raw: np.ndarray, type_: GGMLType | int | str, shape: Sequence[int]) -> np.ndarray:
    """The float32 values of a tensor stored as `type_`, in row-major `shape` (GGUF's `ne`
    reversed: the last axis is `ne[0]`, the one the blocks run along).

    `raw` is the tensor's bytes (any uint8-viewable array, e.g. a slice of a memory map).
    Raises ValueError when the type has no decoder or the byte count does not match `shape`."""
    t = ggml_type(type_)
    if t.name not in DECODABLE:
        raise ValueError(f"ggml type {t.name} cannot be decoded (llama.cpp has no decoder)")
    shape = tuple(int(s) for s in shape)
    ne0 = shape[-1] if shape else 1
    rows = math.prod(shape[:-1]) if shape else 1
    data = np.ascontiguousarray(raw).reshape(-1).view(np.uint8)
    expected = rows * row_nbytes(t, ne0)
    if data.size != expected:
        raise ValueError(
            f"{t.name} tensor of shape {shape} needs {expected} bytes, got {data.size}"
        )
    if t.name in _PLAIN:
        return data.view(_PLAIN[t.name]).astype(np.float32).reshape(shape)
    if t.name == "bf16":
        wide = data.view("<u2").astype(np.uint32) << np.uint32(16)
        return wide.view(np.float32).reshape(shape)
    blocks = data.reshape(-1, t.type_size)
    out = np.empty((blocks.shape[0], t.block_size), dtype=np.float32)
    kernel, extra = _kernel(t.name)
    split_rows(kernel, blocks, out, *extra, values_per_row=t.block_size)
    return out.reshape(shape)


@cache
def _kernel(name: str) -> tuple[Callable[..., Any], tuple[np.ndarray, ...]]:
    """The kernel of a block type and the tables it reads."""
    if name in sq.KERNELS:
        return sq.KERNELS[name], ()
    if name in kq.KERNELS:
        return kq.KERNELS[name], ()
    fp4 = table("kvalues_fp4")
    grids: dict[str, tuple[Callable[..., Any], tuple[np.ndarray, ...]]] = {
        "mxfp4": (sq.dq_mxfp4, (fp4, sq.e8m0_half_table())),
        "nvfp4": (sq.dq_nvfp4, (fp4, sq.ue4m3_table())),
        "iq4_nl": (sq.dq_iq4_nl, (table("kvalues_iq4nl"),)),
        "iq4_xs": (iq.dq_iq4_xs, (table("kvalues_iq4nl"),)),
        "tq1_0": (iq.dq_tq1_0, ()),
        "tq2_0": (iq.dq_tq2_0, ()),
    }
    if name in grids:
        return grids[name]
    ksigns = table("ksigns_iq2xs")
    if name == "iq2_xxs":
        return iq.dq_iq2_xxs, (_bytes(table("iq2xxs_grid"), 8), ksigns)
    if name == "iq2_xs":
        return iq.dq_iq2_xs, (_bytes(table("iq2xs_grid"), 8), ksigns)
    if name == "iq2_s":
        return iq.dq_iq2_s, (_bytes(table("iq2s_grid"), 8),)
    if name == "iq3_xxs":
        return iq.dq_iq3_xxs, (_bytes(table("iq3xxs_grid"), 4), ksigns)
    if name == "iq3_s":
        return iq.dq_iq3_s, (_bytes(table("iq3s_grid"), 4),)
    if name == "iq1_s":
        return iq.dq_iq1_s, (_bytes(table("iq1s_grid"), 8).view(np.int8),)
    if name == "iq1_m":
        return iq.dq_iq1_m, (_bytes(table("iq1s_grid"), 8).view(np.int8),)
    raise ValueError(f"no decoder for {name}")  # unreachable: DECODABLE lists the kernels


def _bytes(grid: np.ndarray, width: int) -> np.ndarray:
    """A grid of packed little-endian words as `(entries, width)` bytes."""
    return np.ascontiguousarray(grid.astype(grid.dtype.newbyteorder("<")).view(np.uint8)).reshape(
        -1, width
    )
