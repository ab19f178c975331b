"""A verifying FlatBuffer reader driven by the TF-Lite schema (`schema.py`).

Why our own reader rather than the `flatbuffers` runtime with generated classes: the Python
runtime does no verification at all, so a hostile file (an offset past the end, a vtable
claiming fields outside its table, a vector of 2^31 elements) surfaces as an IndexError,
struct.error or a huge allocation deep inside generated code. Here every access is checked
against the file before it is made, and the whole decode has a budget proportional to the
file's size, so no input can allocate more than a small multiple of its own bytes. It needs
no dependency and ~300 lines.

Bytes come from `FileSource`: positional reads (`os.pread`) through a small page cache, never a
memory map, so a file truncated by another process gives a clean error instead of SIGBUS.

A decoded table is a dict holding only the fields present in the file (scalars, strings,
numpy arrays for scalar vectors, lists for table vectors, dicts for tables). Byte vectors
(`[ubyte]`: buffer data, custom options) are `Blob`s: an offset and a length, read on demand.
A union field `x` is decoded with the table its `x_type` names; a type code this schema does
not know is kept as `Unknown`. Offsets in a FlatBuffer are unsigned and point forward, so the
data has no cycles; nesting depth is bounded by the schema.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.formats.tflite.schema import TABLES, UNIONS

__all__ = [
    "SCALARS",
    "Blob",
    "FileSource",
    "FlatError",
    "FlatReader",
    "Unknown",
]

SCALARS: dict[str, tuple[str, int]] = {
    "bool": ("<?", 1),
    "int8": ("<b", 1),
    "uint8": ("<B", 1),
    "int16": ("<h", 2),
    "uint16": ("<H", 2),
    "int32": ("<i", 4),
    "uint32": ("<I", 4),
    "int64": ("<q", 8),
    "uint64": ("<Q", 8),
    "float32": ("<f", 4),
    "float64": ("<d", 8),
}
_NP = {k: np.dtype(v[0]) for k, v in SCALARS.items()}
_PAGE = 1 << 16
_CACHED_PAGES = 64
_MAX_DEPTH = 16


class FlatError(Exception):
    """A structural defect; the reader turns it into a `FormatError` naming the file (and the
    tensor, when the defect is in one)."""

    def __init__(self, reason: str, tensor: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tensor = tensor


@dataclass(frozen=True)
class Blob:
    """`length` bytes at `offset` of the source file (buffer data, custom options)."""

    offset: int
    length: int


@dataclass(frozen=True)
class Unknown:
    """A union member this schema does not know (a newer TF-Lite): kept, never re-written."""

    union: str
    code: int


class FileSource:
    """Positional reads of one file through a page cache; short reads are errors.

    Checking each read's length is what turns a file shrinking under us into an error
    instead of zeros or a crash.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise FormatError(path, f"cannot open: {exc.strerror or exc}") from None
        self.size = os.fstat(self._fd).st_size
        self._pages: OrderedDict[int, bytes] = OrderedDict()

    def read(self, offset: int, n: int) -> bytes:
        """`n` bytes at `offset`, or FlatError when they lie outside the file."""
        if offset < 0 or n < 0 or offset + n > self.size:
            raise FlatError(f"{n} bytes at offset {offset} lie outside the {self.size}-byte file")
        if n > _PAGE:
            return self.read_exact(offset, n)
        first, last = offset // _PAGE, (offset + n - 1) // _PAGE if n else offset // _PAGE
        data = b"".join(self._page(p) for p in range(first, last + 1))
        start = offset - first * _PAGE
        return data[start : start + n]

    def _page(self, index: int) -> bytes:
        page = self._pages.get(index)
        if page is None:
            want = min(_PAGE, self.size - index * _PAGE)
            page = self.read_exact(index * _PAGE, want)
            self._pages[index] = page
            if len(self._pages) > _CACHED_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(index)
        return page

    def read_exact(self, offset: int, n: int) -> bytes:
        """`n` bytes at `offset` read from the file now (no cache)."""
        try:
            data = os.pread(self._fd, n, offset)
        except OSError as exc:
            raise FlatError(f"cannot read: {exc.strerror or exc}") from None
        if len(data) != n:
            raise FlatError(f"the file ends at byte {offset + len(data)} (shrank while open?)")
        return data

    def read_into(self, offset: int, out: np.ndarray) -> None:
        """Fill `out` (contiguous) with the bytes at `offset`, in one pass, no extra copy."""
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        done = 0
        while done < len(view):
            try:
                got = os.preadv(self._fd, [view[done:]], offset + done)
            except OSError as exc:
                raise FlatError(f"cannot read: {exc.strerror or exc}") from None
            if got == 0:
                raise FlatError(f"the file ends at byte {offset + done} (shrank while open?)")
            done += got

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._pages.clear()


class FlatReader:
    """Decodes tables of a FlatBuffer held by a `FileSource` (see the module docstring)."""

    def __init__(self, src: FileSource) -> None:
        self.src = src
        self._tables_left = max(4096, src.size // 4)
        self._bytes_left = 2 * src.size + (1 << 20)

    def _u32(self, pos: int) -> int:
        return int(struct.unpack("<I", self.src.read(pos, 4))[0])

    def root(self, name: str) -> dict[str, Any]:
        """The root table (its offset is the file's first 4 bytes)."""
        return self.table(self._u32(0), name, 0)

    def table(self, pos: int, name: str, depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise FlatError(f"{name} nested deeper than {_MAX_DEPTH} tables")
        self._tables_left -= 1
        if self._tables_left < 0:
            raise FlatError("more tables than a file of this size can hold")
        (soff,) = struct.unpack("<i", self.src.read(pos, 4))
        vt = pos - soff
        vt_size, t_size = struct.unpack("<HH", self.src.read(vt, 4))
        if vt_size < 4 or vt_size % 2 or t_size < 4 or vt + vt_size > self.src.size:
            raise FlatError(f"{name} at {pos}: vtable sizes {vt_size}/{t_size} are invalid")
        body = self.src.read(pos, t_size)
        fields = TABLES[name]
        n = min(len(fields), (vt_size - 4) // 2)
        slots = struct.unpack(f"<{n}H", self.src.read(vt + 4, 2 * n)) if n else ()
        out: dict[str, Any] = {}
        for (fname, ftype), off in zip(fields, slots, strict=False):
            if off:
                out[fname] = self._field(pos, body, off, fname, ftype, out, depth)
        return out

    def _field(
        self,
        pos: int,
        body: bytes,
        off: int,
        fname: str,
        ftype: str,
        out: dict[str, Any],
        depth: int,
    ) -> Any:
        size = SCALARS[ftype][1] if ftype in SCALARS else 4
        if off < 4 or off + size > len(body):
            raise FlatError(f"field {fname} at table offset {off} lies outside its table")
        if ftype in SCALARS:
            return struct.unpack_from(SCALARS[ftype][0], body, off)[0]
        (rel,) = struct.unpack_from("<I", body, off)
        if rel == 0:
            raise FlatError(f"field {fname}: offset 0 points at itself")
        target = pos + off + rel
        if ftype.startswith("union:"):
            return self._union(target, ftype[6:], out.get(f"{fname}_type", 0), depth)
        return self._value(target, ftype, depth)

    def _union(self, target: int, union: str, code: int, depth: int) -> Any:
        members = UNIONS[union]
        if not 1 <= code <= len(members):
            return Unknown(union, code)
        return self.table(target, members[code - 1], depth + 1)

    def _value(self, target: int, ftype: str, depth: int) -> Any:
        if ftype == "string":
            return self._string(target)
        if ftype.startswith("table:"):
            return self.table(target, ftype[6:], depth + 1)
        return self._vector(target, ftype[1:-1], depth)

    def _charge(self, n: int) -> None:
        self._bytes_left -= n
        if self._bytes_left < 0:
            raise FlatError("decoded data exceeds what a file of this size can hold")

    def _string(self, pos: int) -> str:
        n = self._u32(pos)
        self._charge(n)
        raw = self.src.read(pos + 4, n)
        return raw.decode("utf-8", "surrogateescape")

    def _vector(self, pos: int, elem: str, depth: int) -> Any:
        n = self._u32(pos)
        start = pos + 4
        if elem == "uint8":
            if start + n > self.src.size:
                raise FlatError(f"a {n}-byte vector at {start} runs past the end of the file")
            return Blob(start, n)
        width = SCALARS[elem][1] if elem in SCALARS else 4
        if n * width > self.src.size - start:
            raise FlatError(f"a {n}-element vector at {start} runs past the end of the file")
        self._charge(n * width)
        raw = self.src.read(start, n * width)
        if elem in SCALARS:
            return np.frombuffer(raw, _NP[elem]).copy()
        rels = struct.unpack(f"<{n}I", raw)
        items = []
        for i, rel in enumerate(rels):
            if rel == 0:
                raise FlatError(f"vector element {i}: offset 0 points at itself")
            items.append(self._value(start + 4 * i + rel, elem, depth))
        return items
