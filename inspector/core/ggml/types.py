"""The ggml tensor types of llama.cpp: id, name, block size and bytes per block.

Ids are `enum ggml_type` of `ggml/include/ggml.h` (llama.cpp 0c1e57098, the gguf-py 0.19 of the
same tree); names are ggml's `type_name` in lower case, which is also our scheme name (`q4_k`,
`iq4_nl`). A type stores `block_size` consecutive values of a row (GGUF's `ne[0]`) in
`type_size` bytes, so a row of `ne0` values takes `ne0 / block_size * type_size` bytes and `ne0`
must be a multiple of `block_size`. Ids 4, 5, 31–33 and 36–38 were removed from ggml and GGUF.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GGML_TYPES", "GGMLType", "ggml_type", "row_nbytes"]

QK_K = 256


@dataclass(frozen=True)
class GGMLType:
    """One ggml type. `block_size` values take `type_size` bytes (1 and the element size for the
    plain types)."""

    id: int
    name: str
    block_size: int
    type_size: int

    @property
    def quantized(self) -> bool:
        """True for block formats (scales inside the block), False for f32/f16/bf16/ints."""
        return self.block_size > 1

    @property
    def bits_per_weight(self) -> float:
        """Stored bits per value, block scales included (4.5 for q4_k)."""
        return 8.0 * self.type_size / self.block_size


def _t(id_: int, name: str, block: int, size: int) -> GGMLType:
    return GGMLType(id_, name, block, size)


_ALL = (
    _t(0, "f32", 1, 4),
    _t(1, "f16", 1, 2),
    _t(2, "q4_0", 32, 2 + 16),
    _t(3, "q4_1", 32, 2 + 2 + 16),
    _t(6, "q5_0", 32, 2 + 4 + 16),
    _t(7, "q5_1", 32, 2 + 2 + 4 + 16),
    _t(8, "q8_0", 32, 2 + 32),
    _t(9, "q8_1", 32, 2 + 2 + 32),
    _t(10, "q2_k", QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    _t(11, "q3_k", QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    _t(12, "q4_k", QK_K, 2 + 2 + QK_K // 2 + 12),
    _t(13, "q5_k", QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
    _t(14, "q6_k", QK_K, 2 + QK_K // 2 + QK_K // 4 + QK_K // 16),
    _t(15, "q8_k", QK_K, 4 + QK_K + QK_K // 8),
    _t(16, "iq2_xxs", QK_K, 2 + QK_K // 4),
    _t(17, "iq2_xs", QK_K, 2 + QK_K // 4 + QK_K // 32),
    _t(18, "iq3_xxs", QK_K, 2 + QK_K // 4 + QK_K // 8),
    _t(19, "iq1_s", QK_K, 2 + QK_K // 8 + QK_K // 16),
    _t(20, "iq4_nl", 32, 2 + 16),
    _t(21, "iq3_s", QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    _t(22, "iq2_s", QK_K, 2 + QK_K // 4 + QK_K // 16),
    _t(23, "iq4_xs", QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    _t(24, "i8", 1, 1),
    _t(25, "i16", 1, 2),
    _t(26, "i32", 1, 4),
    _t(27, "i64", 1, 8),
    _t(28, "f64", 1, 8),
    _t(29, "iq1_m", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    _t(30, "bf16", 1, 2),
    _t(34, "tq1_0", QK_K, 2 + 4 * 13),
    _t(35, "tq2_0", QK_K, 2 + 64),
    _t(39, "mxfp4", 32, 1 + 16),
    _t(40, "nvfp4", 64, 4 + 32),
    _t(41, "q1_0", 128, 2 + 16),
    _t(42, "q2_0", 64, 2 + 16),
)

GGML_TYPES: dict[int, GGMLType] = {t.id: t for t in _ALL}
_BY_NAME: dict[str, GGMLType] = {t.name: t for t in _ALL}


def ggml_type(key: GGMLType | int | str) -> GGMLType:
    """The type for an id (12), a name in any case (`"q4_k"`, `"Q4_K"`) or a GGMLType.

    Raises ValueError naming the key when ggml has no such type (an unknown id in a GGUF file
    is reported, not guessed)."""
    if isinstance(key, GGMLType):
        return key
    if isinstance(key, bool):
        raise ValueError(f"not a ggml type: {key!r}")
    if isinstance(key, int):
        found = GGML_TYPES.get(key)
        if found is None:
            raise ValueError(f"unknown ggml type id {key}")
        return found
    if isinstance(key, str):
        found = _BY_NAME.get(key.strip().lower())
        if found is None:
            raise ValueError(f"unknown ggml type {key!r} (known: {', '.join(_BY_NAME)})")
        return found
    raise ValueError(f"not a ggml type: {key!r}")


def row_nbytes(type_: GGMLType | int | str, ne0: int) -> int:
    """Bytes of one row of `ne0` values stored as `type_` (ggml's `ggml_row_size`).

    Raises ValueError when `ne0` is negative or not a multiple of the type's block size: such a
    row cannot be stored in that type (llama-quantize falls back, see `fallback.py`)."""
    t = ggml_type(type_)
    if ne0 < 0:
        raise ValueError(f"row length {ne0} is negative")
    if ne0 % t.block_size:
        raise ValueError(
            f"row length {ne0} is not a multiple of {t.name}'s block size {t.block_size}"
        )
    return ne0 // t.block_size * t.type_size
