"""The ggml type facts the GGUF container needs: id, name, block size, bytes per block.

A thin adapter so the reader and writer depend on one small surface; decoding the block types
is `inspector.core.ggml` (imported lazily, so opening a file needs no decoder).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["GGMLTypeInfo", "dequantize", "row_nbytes", "type_by_id", "type_by_name"]


class GGMLTypeInfo(NamedTuple):
    """One ggml tensor type: `block_size` values are stored in `type_size` bytes."""

    name: str
    id: int
    block_size: int
    type_size: int

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.type_size / self.block_size


_TABLE = (
    ("F32", 0, 1, 4),
    ("F16", 1, 1, 2),
    ("Q4_0", 2, 32, 18),
    ("Q4_1", 3, 32, 20),
    ("Q5_0", 6, 32, 22),
    ("Q5_1", 7, 32, 24),
    ("Q8_0", 8, 32, 34),
    ("Q8_1", 9, 32, 40),
    ("Q2_K", 10, 256, 84),
    ("Q3_K", 11, 256, 110),
    ("Q4_K", 12, 256, 144),
    ("Q5_K", 13, 256, 176),
    ("Q6_K", 14, 256, 210),
    ("Q8_K", 15, 256, 292),
    ("IQ2_XXS", 16, 256, 66),
    ("IQ2_XS", 17, 256, 74),
    ("IQ3_XXS", 18, 256, 98),
    ("IQ1_S", 19, 256, 50),
    ("IQ4_NL", 20, 32, 18),
    ("IQ3_S", 21, 256, 110),
    ("IQ2_S", 22, 256, 82),
    ("IQ4_XS", 23, 256, 136),
    ("I8", 24, 1, 1),
    ("I16", 25, 1, 2),
    ("I32", 26, 1, 4),
    ("I64", 27, 1, 8),
    ("F64", 28, 1, 8),
    ("IQ1_M", 29, 256, 56),
    ("BF16", 30, 1, 2),
    ("TQ1_0", 34, 256, 54),
    ("TQ2_0", 35, 256, 66),
    ("MXFP4", 39, 32, 17),
    ("NVFP4", 40, 64, 36),
    ("Q1_0", 41, 128, 18),
)
_BY_ID = {row[1]: GGMLTypeInfo(*row) for row in _TABLE}
_BY_NAME = {t.name: t for t in _BY_ID.values()}


def type_by_id(type_id: int) -> GGMLTypeInfo | None:
    """The type stored under `type_id` in a GGUF tensor info, None when unknown."""
    return _BY_ID.get(type_id)


def type_by_name(name: str) -> GGMLTypeInfo | None:
    """Case-insensitive lookup: `q4_k` and `Q4_K` name the same type."""
    return _BY_NAME.get(name.upper())


def row_nbytes(t: GGMLTypeInfo, ne0: int) -> int:
    """Bytes of one row of `ne0` values (`ne0` a multiple of the block size)."""
    return ne0 // t.block_size * t.type_size


def dequantize(raw: np.ndarray, t: GGMLTypeInfo, shape: tuple[int, ...]) -> np.ndarray:
    """float32 values of a block-quantized tensor's bytes, shaped row-major `shape`."""
    from inspector.core.ggml.dequant import dequantize as decode

    return decode(raw, t.name, shape)
