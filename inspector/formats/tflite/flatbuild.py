"""Serialize decoded TF-Lite tables (dicts, see `flatbuf.py`) back into a FlatBuffer.

The layout is front to back, breadth first: the root offset and the `TFL3` identifier, then each
table as its vtable followed by the table, its children queued behind every table already
waiting. FlatBuffer offsets only have to point forward, which a parent written before its
children satisfies; identical vtables are shared, and so are equal strings written after all
their referrers (tensor names repeat: the DEQUANTIZE input and output share one). Scalars sit
at multiples of their size from the start of the file, vectors' data at
multiples of their element size, and buffer data of 1 KiB or more at multiples of 16 (schema.fbs
asks `force_align: 16` so weights can be read in place from a memory map; the converter of
TensorFlow 2.19 aligns to 4 only, which costs nothing for the small buffers).

Large byte vectors are not copied into memory: the output is a list of parts, structural
`bytearray`s and `Chunk`s (a length and a function producing the bytes at write time), so a
model's weights stream from their source one at a time.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.formats.tflite.flatbuf import SCALARS, Blob, Unknown
from inspector.formats.tflite.schema import TABLES, UNIONS

__all__ = ["ALIGN16_FROM", "Builder", "Chunk", "Placeholder"]

ALIGN16_FROM = 1024
"""Byte vectors named in `align16` of at least this size start at a multiple of 16; smaller
ones (biases, shapes) at a multiple of 4, as the converter writes all of them."""


@dataclass(frozen=True)
class Chunk:
    """`length` bytes produced by `produce()` when the file is written."""

    length: int
    produce: Callable[[], bytes | memoryview]


@dataclass(frozen=True)
class Placeholder:
    """A uint64 field to fill once the flatbuffer's size is known (`Builder.patch_u64`)."""

    key: Any


class Builder:
    """Builds one FlatBuffer; `blob_chunk(blob)` turns a source `Blob` into a `Chunk`."""

    def __init__(self, blob_chunk: Callable[[Blob], Chunk], align16: frozenset[str]) -> None:
        self._parts: list[bytearray | Chunk] = [bytearray()]
        self._pos = 0
        self._vtables: dict[bytes, int] = {}
        self._strings: dict[str, int] = {}
        self._queue: deque[tuple[bytearray, int, int, Callable[[int], int]]] = deque()
        self._blob_chunk = blob_chunk
        self._align16 = align16
        self.placeholders: dict[Any, tuple[bytearray, int]] = {}

    @property
    def size(self) -> int:
        return self._pos

    def _tail(self) -> bytearray:
        last = self._parts[-1]
        if not isinstance(last, bytearray):
            last = bytearray()
            self._parts.append(last)
        return last

    def _put(self, data: bytes) -> tuple[bytearray, int]:
        tail = self._tail()
        at = len(tail)
        tail += data
        self._pos += len(data)
        return tail, at

    def pad_to(self, align: int, extra: int = 0) -> None:
        """Pad so that `pos + extra` is a multiple of `align`."""
        self._put(bytes(-(self._pos + extra) % align))

    def finish(self, root: str, obj: dict[str, Any], ident: bytes) -> None:
        """Write the root offset, the file identifier and the root table."""
        tail, at = self._put(bytes(4) + ident)
        pos = self.table(root, obj)
        struct.pack_into("<I", tail, at, pos)
        while self._queue:
            tail, at, field, emit = self._queue.popleft()
            struct.pack_into("<I", tail, at, emit(field) - field)

    def table(self, name: str, obj: dict[str, Any]) -> int:
        """Write table `name` and its children; returns the table's position."""
        fields = TABLES[name]
        present = [(i, f, t) for i, (f, t) in enumerate(fields) if f in obj]
        inline = sorted(present, key=lambda p: -_inline_size(p[2]))
        layout, t_size = [], 4
        for i, f, t in inline:
            size = _inline_size(t)
            t_size += -t_size % size
            layout.append((i, f, t, t_size))
            t_size += size
        t_size += -t_size % 4
        nslots = max((i for i, _, _ in present), default=-1) + 1
        slots = [0] * nslots
        for i, _, _, off in layout:
            slots[i] = off
        vt = struct.pack(f"<HH{nslots}H", 4 + 2 * nslots, t_size, *slots)
        align = max([4] + [_inline_size(t) for _, _, t in present])
        vt_pos = self._vtable(vt, align)
        self.pad_to(align)
        pos = self._pos
        body = bytearray(t_size)
        struct.pack_into("<i", body, 0, pos - vt_pos)
        children, holes = [], []
        for _, f, t, off in layout:
            if isinstance(obj[f], Placeholder):
                holes.append((obj[f].key, off))
            elif t in SCALARS:
                struct.pack_into(SCALARS[t][0], body, off, _scalar(obj[f], t))
            else:
                children.append((f, t, off))
        tail, at = self._put(bytes(body))
        for key, off in holes:
            self.placeholders[key] = (tail, at + off)
        for f, t, off in children:
            self._queue.append((tail, at + off, pos + off, self._emitter(f, t, obj)))
        return pos

    def _vtable(self, vt: bytes, align: int) -> int:
        known = self._vtables.get(vt)
        if known is not None:
            return known
        self.pad_to(2)
        pos = self._pos
        self._put(vt)
        self._vtables[vt] = pos
        return pos

    def _emitter(self, fname: str, ftype: str, obj: dict[str, Any]) -> Callable[[int], int]:
        """A function writing the field's child (given the referring field's position)."""
        value = obj[fname]
        if ftype.startswith("union:"):
            if isinstance(value, Unknown):
                raise ValueError(f"{fname}: a {value.union} of kind {value.code} is unknown")
            member = UNIONS[ftype[6:]][int(obj[f"{fname}_type"]) - 1]
            return lambda _: self.table(member, value)
        if ftype == "string":
            return lambda field: self.string(value, field)
        if ftype.startswith("table:"):
            return lambda _: self.table(ftype[6:], value)
        return lambda _: self.vector(fname, ftype[1:-1], value)

    def string(self, text: str, after: int) -> int:
        """Write a string, or point at an earlier copy that lies past `after` (the referring
        field: offsets only point forward)."""
        known = self._strings.get(text)
        if known is not None and known > after:
            return known
        raw = text.encode("utf-8", "surrogateescape")
        self.pad_to(4)
        pos = self._pos
        self._put(struct.pack("<I", len(raw)) + raw + b"\0")
        self._strings[text] = pos
        return pos

    def vector(self, fname: str, elem: str, value: Any) -> int:
        if elem == "uint8":
            return self._bytes(value, 16 if fname in self._align16 else 4)
        if elem in SCALARS:
            arr = np.ascontiguousarray(value, dtype=SCALARS[elem][0])
            self.pad_to(max(4, arr.itemsize), 4)
            pos = self._pos
            self._put(struct.pack("<I", arr.size) + arr.tobytes())
            return pos
        self.pad_to(4)
        pos = self._pos
        tail, at = self._put(struct.pack("<I", len(value)) + bytes(4 * len(value)))
        for k, item in enumerate(value):
            emit = self._emitter_item(elem, item)
            self._queue.append((tail, at + 4 + 4 * k, pos + 4 + 4 * k, emit))
        return pos

    def _emitter_item(self, elem: str, item: Any) -> Callable[[int], int]:
        if elem == "string":
            return lambda field: self.string(item, field)
        return lambda _: self.table(elem[6:], item)

    def _bytes(self, value: Blob | Chunk | bytes, align: int) -> int:
        chunk = self._blob_chunk(value) if isinstance(value, Blob) else value
        n = chunk.length if isinstance(chunk, Chunk) else len(chunk)
        self.pad_to(align if n >= ALIGN16_FROM else 4, 4)
        pos = self._pos
        self._put(struct.pack("<I", n))
        if isinstance(chunk, Chunk):
            self._parts.append(chunk)
            self._pos += n
        else:
            self._put(bytes(chunk))
        return pos

    def patch_u64(self, key: Any, value: int) -> None:
        """Fill the uint64 field written for `Placeholder(key)`."""
        tail, at = self.placeholders[key]
        struct.pack_into("<Q", tail, at, value)

    def append_chunk(self, chunk: Chunk, align: int) -> int:
        """Raw bytes after the flatbuffer (buffers stored by offset); returns their offset."""
        self.pad_to(align)
        pos = self._pos
        self._parts.append(chunk)
        self._pos += chunk.length
        return pos

    def structure(self) -> Iterator[bytes]:
        """The structural bytes only (chunks left out): the file's layout without payloads."""
        for part in self._parts:
            if isinstance(part, bytearray):
                yield bytes(part)

    def parts(self) -> Iterator[bytes | memoryview]:
        """The file's bytes in order, chunks produced one at a time."""
        for part in self._parts:
            if isinstance(part, Chunk):
                data = part.produce()
                if len(data) != part.length:
                    raise ValueError(f"a chunk produced {len(data)} bytes, not {part.length}")
                yield data
            elif part:
                yield bytes(part)


def _inline_size(ftype: str) -> int:
    return SCALARS[ftype][1] if ftype in SCALARS else 4


def _scalar(value: Any, ftype: str) -> Any:
    if ftype == "bool":
        return bool(value)
    if ftype.startswith("float"):
        return float(value)
    return int(value)
