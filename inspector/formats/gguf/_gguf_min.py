"""A small, strict GGUF (v2/v3) parser for imatrix files: metadata and F32 tensors only.

Every count and offset is checked against the file size before use, so a truncated or hostile
file raises GGUFError instead of allocating or reading past the end. (The model reader of
`inspector.formats.gguf` serves model files; this one exists so the imatrix reader needs
nothing else.)
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

__all__ = ["GGUFError", "parse_gguf"]

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 4


class GGUFError(ValueError):
    """The bytes are not a valid GGUF file (the reason says where)."""


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise GGUFError(f"truncated at byte {self.pos} (needs {n} more)")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.unpack("<Q"))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"string at byte {self.pos - len(raw)} is not UTF-8") from None

    def value(self, type_id: int, depth: int = 0) -> Any:
        if type_id in _SCALARS:
            return self.unpack(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string()
        if type_id == _ARRAY and depth == 0:
            item, count = self.unpack("<I"), self.unpack("<Q")
            if count > len(self.data) - self.pos:  # every item takes at least one byte
                raise GGUFError(f"array of {count} items at byte {self.pos} exceeds the file")
            return [self.value(item, 1) for _ in range(count)]
        raise GGUFError(f"unknown value type {type_id} at byte {self.pos}")


def parse_gguf(data: bytes) -> tuple[dict[str, Any], dict[str, tuple[int, np.ndarray]]]:
    """(metadata, tensors) of a GGUF file: tensors map name → (ggml type id, values), values
    being float32 for F32 tensors and empty for any other type."""
    cur = _Cursor(data)
    if cur.take(4) != b"GGUF":
        raise GGUFError("no GGUF magic")
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_tensors > len(data) or n_kv > len(data):
        raise GGUFError("tensor or key count exceeds the file")
    kv: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        kv[key] = cur.value(cur.unpack("<I"))
    infos = [_tensor_info(cur) for _ in range(n_tensors)]
    align = kv.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise GGUFError(f"bad general.alignment {align!r}")
    start = -(-cur.pos // align) * align
    tensors: dict[str, tuple[int, np.ndarray]] = {}
    for name, ne, type_id, offset in infos:
        if name in tensors:
            raise GGUFError(f"duplicate tensor {name!r}")
        values = np.zeros(0, dtype=np.float32)
        if type_id == 0:
            count = math.prod(ne)
            begin = start + offset
            if offset % align or begin + 4 * count > len(data):
                raise GGUFError(f"tensor {name!r} data lies outside the file")
            values = np.frombuffer(data, dtype="<f4", count=count, offset=begin).astype(np.float32)
        tensors[name] = (type_id, values)
    return kv, tensors


def _tensor_info(cur: _Cursor) -> tuple[str, list[int], int, int]:
    name = cur.string()
    n_dims = cur.unpack("<I")
    if not 1 <= n_dims <= _MAX_DIMS:
        raise GGUFError(f"tensor {name!r} has {n_dims} dimensions")
    ne = [cur.unpack("<Q") for _ in range(n_dims)]
    if any(n > len(cur.data) * 8 for n in ne):
        raise GGUFError(f"tensor {name!r} has an impossible shape {ne}")
    return name, ne, cur.unpack("<I"), cur.unpack("<Q")
