"""GGUF header parsing: metadata key/values and tensor infos, validated before anything is trusted.

Layout (little-endian): magic `GGUF`, u32 version (2 or 3; v1 used 32-bit counts and is gone
from llama.cpp), u64 tensor count, u64 key/value count, the key/values (u64-length key, u32
value type, value; arrays are u32 item type + u64 count + items and may nest), the tensor infos
(name, u32 n_dims ≤ 4, `ne` as u64 fastest-first, i32 ggml type, u64 offset relative to the data
section), padding to `general.alignment` (default 32), the data.

Everything is checked against the bytes the file holds before it is allocated or looped over:
counts and lengths beyond the file, keys and tensor names repeated, n_dims > 4, element counts
beyond int64, rows that are not whole blocks, tensor data outside the file or overlapping.
Loops are bounded too (`MAX_ITEMS` array items in all), so a hostile header costs at most a few
seconds and memory proportional to its key/value count, never to its declared sizes. Values are
not copied: each field records where its bytes lie so a writer can re-emit them unchanged.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.ggml.types import GGML_TYPES, GGMLType, row_nbytes

__all__ = [
    "DEFAULT_ALIGNMENT",
    "MAGIC",
    "MAX_DIMS",
    "VALUE_TYPES",
    "GGUFField",
    "GGUFHeader",
    "GGUFTensorInfo",
    "parse_header",
]

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4
MAX_FIELDS = 1 << 16
MAX_TENSORS = 1 << 22
MAX_ITEMS = 1 << 23
"""Array items (strings, nested arrays) the parser walks one by one, in all: a vocabulary of
262,144 tokens is 3 % of it; more than that is not a model header."""
MAX_NESTING = 8
_SHOWN_ITEMS = 8
_SHOWN_CHARS = 1 << 20
_INT64_MAX = (1 << 63) - 1

# value type id → (name, numpy dtype of one item; None for strings and arrays)
VALUE_TYPES: dict[int, tuple[str, np.dtype | None]] = {
    0: ("uint8", np.dtype("u1")),
    1: ("int8", np.dtype("i1")),
    2: ("uint16", np.dtype("<u2")),
    3: ("int16", np.dtype("<i2")),
    4: ("uint32", np.dtype("<u4")),
    5: ("int32", np.dtype("<i4")),
    6: ("float32", np.dtype("<f4")),
    7: ("bool", np.dtype("u1")),
    8: ("string", None),
    9: ("array", None),
    10: ("uint64", np.dtype("<u8")),
    11: ("int64", np.dtype("<i8")),
    12: ("float64", np.dtype("<f8")),
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFField:
    """One metadata key/value. `value` is the scalar (str, int, float, bool), or for an array
    its first items; `length` is the array's item count (1 for a scalar); `item_type` is the
    array's item type name ("array" for nested arrays). The field's bytes (key included) are
    `nbytes` bytes at `offset` in the file, re-emitted unchanged by the writer."""

    key: str
    type: str
    value: Any
    offset: int
    nbytes: int
    item_type: str | None = None
    length: int = 1

    def display(self) -> Any:
        """The value for people: scalars as they are, arrays summarised."""
        if self.type != "array":
            return self.value
        return {"array": self.item_type, "length": self.length, "first": list(self.value)}


@dataclass(frozen=True)
class GGUFTensorInfo:
    """A tensor as the header declares it: `ne` fastest-first, `offset` relative to the data
    section, `nbytes` its data's size."""

    name: str
    ne: tuple[int, ...]
    ggml: GGMLType
    offset: int
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The row-major shape (`ne` reversed): the blocks run along the last axis."""
        return tuple(reversed(self.ne))


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: tuple[GGUFField, ...]
    tensors: tuple[GGUFTensorInfo, ...]
    alignment: int
    data_offset: int

    def get(self, key: str, default: Any = None) -> Any:
        for f in self.fields:
            if f.key == key:
                return f.value
        return default


class _Short(Exception):
    """The header asks for bytes past the end of the file."""


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos, self.end = buf, 0, len(buf)
        self.items = 0

    def take(self, n: int) -> int:
        """Advance over `n` bytes; returns where they start."""
        if n < 0 or n > self.end - self.pos:
            raise _Short()
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, size: int) -> Any:
        return struct.unpack_from(fmt, self.buf, self.take(size))[0]

    def u32(self) -> int:
        return self.unpack("<I", 4)

    def u64(self) -> int:
        return self.unpack("<Q", 8)

    def raw_string(self) -> bytes:
        n = self.u64()
        return bytes(self.buf[self.take(n) : self.pos])

    def count(self, what: str, n: int = 1) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            raise ValueError(f"{what}: more than {MAX_ITEMS} array items in the header")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _shown(raw: bytes) -> str:
    if len(raw) <= _SHOWN_CHARS:
        return _text(raw)
    return _text(raw[:200]) + f"… ({len(raw)} bytes)"


def _scalar(cur: _Cursor, vtype: int) -> Any:
    if vtype == _STRING:
        return _shown(cur.raw_string())
    dtype = VALUE_TYPES[vtype][1]
    assert dtype is not None
    value = np.frombuffer(cur.buf, dtype, 1, cur.take(dtype.itemsize))[0]
    return _item(value, vtype)


def _item(value: np.generic, vtype: int) -> Any:
    """A Python value for display: float32 as its shortest decimal (1e-05, not 9.99…e-06)."""
    if vtype == 7:
        return bool(value)
    return float(str(value)) if vtype == 6 else value.item()


_U64 = struct.Struct("<Q").unpack_from


def _skip_strings(cur: _Cursor, n: int) -> None:
    """Walk over `n` strings (u64 length, bytes) without copying them: the tight loop that a
    vocabulary of 150,000 tokens and as many merges goes through at every open."""
    buf, pos, end = cur.buf, cur.pos, cur.end
    for _ in range(n):
        if end - pos < 8:
            raise _Short()
        pos += 8 + _U64(buf, pos)[0]
        if pos > end:
            raise _Short()
    cur.pos = pos


def _array(cur: _Cursor, key: str, depth: int) -> tuple[str, int, list[Any]]:
    """Walk one array value; returns (item type name, length, first items)."""
    if depth > MAX_NESTING:
        raise ValueError(f"arrays nested more than {MAX_NESTING} deep")
    item = cur.u32()
    if item not in VALUE_TYPES:
        raise ValueError(f"unknown array item type {item}")
    n = cur.u64()
    name, dtype = VALUE_TYPES[item]
    if dtype is not None:
        if n > (cur.end - cur.pos) // dtype.itemsize:
            raise _Short()
        first = np.frombuffer(cur.buf, dtype, min(n, _SHOWN_ITEMS), cur.take(n * dtype.itemsize))
        return name, n, [_item(v, item) for v in first]
    if n > (cur.end - cur.pos) // 8:  # every item is at least a u64 length
        raise _Short()
    cur.count(key, n)
    if item == _STRING:
        texts = [_shown(cur.raw_string()) for _ in range(min(n, _SHOWN_ITEMS))]
        _skip_strings(cur, n - len(texts))
        return name, n, list(texts)
    shown: list[Any] = []
    for i in range(n):
        sub = _array(cur, key, depth + 1)
        if i < _SHOWN_ITEMS:
            shown.append({"array": sub[0], "length": sub[1], "first": sub[2]})
    return name, n, shown


def _field(cur: _Cursor) -> GGUFField:
    start = cur.pos
    raw_key = cur.raw_string()
    key = _text(raw_key)
    if not raw_key:
        raise ValueError("empty metadata key")
    vtype = cur.u32()
    if vtype not in VALUE_TYPES:
        raise ValueError(f"metadata key {key!r:.80} has unknown value type {vtype}")
    try:
        if vtype == _ARRAY:
            item, n, first = _array(cur, key, 1)
            return GGUFField(key, "array", tuple(first), start, cur.pos - start, item, n)
        value = _scalar(cur, vtype)
    except ValueError as exc:
        raise ValueError(f"metadata key {key!r:.80}: {exc}") from None
    return GGUFField(key, VALUE_TYPES[vtype][0], value, start, cur.pos - start)


def _fields(cur: _Cursor, n_kv: int) -> tuple[GGUFField, ...]:
    out: list[GGUFField] = []
    seen: set[str] = set()
    for i in range(n_kv):
        try:
            f = _field(cur)
        except _Short:
            raise ValueError(f"metadata key/value #{i} runs past the end of the file") from None
        if f.key in seen:
            raise ValueError(f"duplicate metadata key {f.key!r:.80}")
        seen.add(f.key)
        out.append(f)
    return tuple(out)


def _alignment(fields: tuple[GGUFField, ...]) -> int:
    f = next((f for f in fields if f.key == "general.alignment"), None)
    if f is None:
        return DEFAULT_ALIGNMENT
    value = f.value
    if f.type not in ("uint32", "int32", "uint64", "int64", "uint16", "uint8"):
        raise ValueError(f"general.alignment must be an integer, got a {f.type}")
    if not 0 < value <= 1 << 30 or value & (value - 1):
        raise ValueError(f"general.alignment {value} is not a power of two")
    return int(value)


class _Bad(Exception):
    """A tensor info that cannot be accepted: (tensor name, reason)."""


def _tensor_info(cur: _Cursor, seen: set[str]) -> GGUFTensorInfo:
    name = _text(cur.raw_string())
    if name in seen:
        raise _Bad(name, "duplicate tensor name")
    seen.add(name)
    n_dims = cur.u32()
    if n_dims > MAX_DIMS:
        raise _Bad(name, f"{n_dims} dimensions (GGUF allows at most {MAX_DIMS})")
    ne = tuple(cur.u64() for _ in range(n_dims))
    type_id = cur.u32()
    offset = cur.u64()
    if any(d > _INT64_MAX for d in ne):
        raise _Bad(name, f"dimensions {list(ne)} are negative as int64")
    if math.prod(ne) > _INT64_MAX:
        raise _Bad(name, f"dimensions {list(ne)} overflow int64")
    ggml = GGML_TYPES.get(type_id)
    if ggml is None:
        raise _Bad(name, f"unknown ggml type {type_id}")
    ne0 = ne[0] if ne else 1
    if ne0 % ggml.block_size:
        raise _Bad(
            name, f"rows of {ne0} values are not whole {ggml.name} blocks of {ggml.block_size}"
        )
    nbytes = row_nbytes(ggml, ne0) * math.prod(ne[1:])
    return GGUFTensorInfo(name, ne, ggml, offset, nbytes)


def _tensors(cur: _Cursor, n: int, path: str) -> tuple[GGUFTensorInfo, ...]:
    out: list[GGUFTensorInfo] = []
    seen: set[str] = set()
    for i in range(n):
        try:
            out.append(_tensor_info(cur, seen))
        except _Short:
            raise FormatError(path, f"tensor info #{i} runs past the end of the file") from None
        except _Bad as bad:
            raise FormatError(path, bad.args[1], bad.args[0]) from None
    return tuple(out)


def _check_data(path: str, tensors: tuple[GGUFTensorInfo, ...], data_len: int) -> None:
    """Every tensor's bytes inside the data section, no two overlapping."""
    end_prev, prev = 0, ""
    for t in sorted(tensors, key=lambda t: (t.offset, t.nbytes)):
        if t.offset > data_len or t.nbytes > data_len - t.offset:
            raise FormatError(
                path,
                f"data at offset {t.offset} ({t.nbytes} bytes) runs past the end of the file "
                f"({data_len} data bytes)",
                t.name,
            )
        if t.nbytes and t.offset < end_prev:
            raise FormatError(path, f"data overlaps tensor '{prev}'", t.name)
        if t.nbytes:
            end_prev, prev = t.offset + t.nbytes, t.name


def _preamble(cur: _Cursor, path: str) -> tuple[int, int, int]:
    if bytes(cur.buf[:4]) != MAGIC:
        raise FormatError(path, "not a GGUF file (no 'GGUF' magic)")
    cur.take(4)
    version = cur.u32()
    if version and not version & 0xFFFF:
        raise FormatError(path, "big-endian GGUF files are not supported (convert on a "
                          "little-endian machine with gguf-py's gguf_convert_endian)")  # fmt: skip
    if version == 1:
        raise FormatError(path, "GGUF version 1 is obsolete (llama.cpp dropped it): re-convert")
    if version not in (2, 3):
        raise FormatError(path, f"unsupported GGUF version {version} (2 and 3 are known)")
    n_tensors, n_kv = cur.u64(), cur.u64()
    room = cur.end - cur.pos
    if n_kv > min(MAX_FIELDS, room // 14):
        raise FormatError(path, f"header declares {n_kv} metadata keys, more than the file holds")
    if n_tensors > min(MAX_TENSORS, room // 25):
        raise FormatError(path, f"header declares {n_tensors} tensors, more than the file holds")
    return version, n_tensors, n_kv


def parse_header(
    buf: memoryview | bytes | mmap.mmap, path: str | os.PathLike[str], check_data: bool = True
) -> GGUFHeader:
    """Parse and validate a whole GGUF file's header from its bytes (a memory map).

    `check_data` False skips checking that the tensors' data lie in `buf` (a header alone)."""
    path = str(path)
    view = memoryview(buf).cast("B")
    try:
        return _parse(_Cursor(view), path, check_data)
    finally:
        with contextlib.suppress(BufferError):
            view.release()  # so the caller can close its map


def _parse(cur: _Cursor, path: str, check_data: bool) -> GGUFHeader:
    try:
        version, n_tensors, n_kv = _preamble(cur, path)
        fields = _fields(cur, n_kv)
        alignment = _alignment(fields)
    except _Short:
        raise FormatError(path, f"file is {cur.end} bytes, too short for a GGUF header") from None
    except ValueError as exc:
        raise FormatError(path, str(exc)) from None
    tensors = _tensors(cur, n_tensors, path)
    data_offset = cur.pos + (-cur.pos % alignment if tensors else 0)
    if data_offset > cur.end and check_data:
        raise FormatError(path, "file ends before its data section")
    if check_data:
        _check_data(path, tensors, cur.end - data_offset)
    return GGUFHeader(version, fields, tensors, alignment, data_offset)
