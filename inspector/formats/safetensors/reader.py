"""safetensors reader: u64 little-endian header length, JSON header, then the raw buffer.

The header (at most 100 MB, the reference's limit) is bounded JSON (`formats/_json.py`: at
most 3 levels deep — header, entry, shape — and one object or list per 12 bytes, checked before
parsing, at most `MAX_TENSORS` entries) and validated as the reference implementation does:
known dtypes, integer shapes,
`data_offsets` inside the buffer, each range exactly `elements × itemsize` long, and ranges
that tile the buffer with no overlap and no gap. Tensors are listed in buffer order (the file
order). Opening reads the header only; `load()` reads one tensor's bytes with positional reads
(`os.preadv`) into its own array. The file is not memory-mapped: touching a mapped page after
another process truncated the file kills the process with SIGBUS (a check of the size before
handing out a view cannot close that race, since the view is touched later), while a short
positional read is an ordinary `FormatError` naming the file and the tensor, whenever the
truncation happens — in the CLI and in the window alike. The cost is one copy of each tensor's
stored bytes at load (reads of the page cache run at memory bandwidth; RSS holds the tensors
being worked on, not the file).
BF16 tensors load as `ml_dtypes.bfloat16` (imported on the first load, not at open).
PyTorch layouts put the output channel first, so `channel_axis` is 0 for ndim ≥ 2.

Metadata keys: `safetensors_metadata` (the `__metadata__` dict, {} when absent),
`safetensors_header` (the parsed header without `__metadata__`, in file order),
`data_offset` (byte offset of the buffer in the file).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor, TensorInfo
from inspector.formats._common import check_shape, layer_of
from inspector.formats._dtypes import ML_DTYPES, storage_dtype, value_dtype
from inspector.formats._json import parse_json, regular_file
from inspector.formats._mmap import PositionalFile

__all__ = ["DTYPES", "read_safetensors"]

# safetensors dtype code → (numpy dtype of the stored bytes, logical dtype name); BF16's bytes
# are viewed as ml_dtypes.bfloat16 at load
DTYPES: dict[str, tuple[np.dtype, str]] = {
    "F64": (np.dtype("<f8"), "float64"),
    "F32": (np.dtype("<f4"), "float32"),
    "F16": (np.dtype("<f2"), "float16"),
    "BF16": (storage_dtype("bfloat16"), "bfloat16"),
    "I64": (np.dtype("<i8"), "int64"),
    "I32": (np.dtype("<i4"), "int32"),
    "I16": (np.dtype("<i2"), "int16"),
    "I8": (np.dtype("i1"), "int8"),
    "U64": (np.dtype("<u8"), "uint64"),
    "U32": (np.dtype("<u4"), "uint32"),
    "U16": (np.dtype("<u2"), "uint16"),
    "U8": (np.dtype("u1"), "uint8"),
    "BOOL": (np.dtype("bool"), "bool"),
}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit
MAX_TENSORS = 1 << 16
"""Tensors one file may declare (real single files: up to a few thousand; the largest sharded
checkpoints ~100,000 over all shards). 200,000 zero-size tensors in a 13 MB header took 16 s
and 394 MB to open and 64 s / 591 MB to preview; 65,536 is ~1/3 of that."""
_HEADER_DEPTH = 3
"""header object > tensor entry > shape / data_offsets list: nothing nests deeper."""
_HEADER_BYTES_PER_CONTAINER = 12
"""The smallest entry `{"dtype":"U8","shape":[],"data_offsets":[0,0]}` spends ~15 bytes of
text per object or list; `[{},{},…]`-style bombs spend 3."""


def read_safetensors(path: str | os.PathLike[str]) -> Model:
    """Open a safetensors file: parse and validate the header; values are read on demand."""
    p = Path(path)
    regular_file(p, "safetensors file")
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            header = _read_header(fh, p, size)
    except OSError as exc:
        raise FormatError(p, f"cannot read: {exc.strerror or exc}") from None
    data_offset = 8 + header["__length__"]
    _check_truncated(p, header["__tensors__"], size, data_offset)
    specs = _validate(p, header["__tensors__"], size - data_offset)
    data = PositionalFile(p)
    tensors = [
        Tensor(info, _loader(data, data_offset + begin, info, np_dtype))
        for info, np_dtype, begin in specs
    ]
    meta = {
        "safetensors_metadata": header["__metadata__"],
        "safetensors_header": {info.name: header["__tensors__"][info.name] for info, _, _ in specs},
        "data_offset": data_offset,
    }
    return Model(p, "safetensors", tensors, meta, [data.close])


def _read_header(fh: Any, p: Path, size: int) -> dict[str, Any]:
    head = fh.read(8)
    if len(head) < 8:
        raise FormatError(p, f"file is {size} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_HEADER or n > size - 8:
        raise FormatError(p, f"header length {n} exceeds the file ({size} bytes) or 100 MB")
    data = fh.read(n)
    if len(data) != n:
        raise FormatError(p, f"file ends inside its {n}-byte header")
    if data.count(b'"data_offsets"') > MAX_TENSORS:  # every entry has one: refuse unparsed
        raise FormatError(p, f"header declares more than {MAX_TENSORS} tensors (the limit)")
    doc = parse_json(
        p,
        data,
        "safetensors header",
        max_depth=_HEADER_DEPTH,
        bytes_per_container=_HEADER_BYTES_PER_CONTAINER,
    )
    if not isinstance(doc, dict):
        raise FormatError(p, "safetensors header must be a JSON object")
    if len(doc) > MAX_TENSORS:
        raise FormatError(p, f"header declares {len(doc)} tensors (limit {MAX_TENSORS})")
    meta = doc.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(p, "__metadata__ must map strings to strings")
    return {"__length__": n, "__metadata__": meta, "__tensors__": doc}


def _check_truncated(p: Path, tensors: dict[str, Any], size: int, data_offset: int) -> None:
    """A file cut short (an interrupted download) is named as such: every range is
    well-formed, spans its shape's bytes and the ranges tile the buffer from 0, yet the last
    one ends past the end of the file. Anything else is left to the per-tensor checks, which
    name the tensor at fault."""
    ranges = []
    for spec in tensors.values():
        offsets = spec.get("data_offsets") if isinstance(spec, dict) else None
        code = spec.get("dtype") if isinstance(spec, dict) else None
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets)
            or not isinstance(code, str)
            or code not in DTYPES
            or not isinstance(shape, list)
            or not all(type(d) is int and d >= 0 for d in shape)
        ):
            return
        nbytes = int(np.prod(shape, dtype=object)) * DTYPES[code][0].itemsize
        if offsets[1] - offsets[0] != nbytes:
            return
        ranges.append((offsets[0], offsets[1]))
    pos = 0
    for begin, end in sorted(ranges):
        if begin != pos:
            return
        pos = end
    if data_offset + pos > size:
        raise FormatError(p, f"truncated: {size} bytes, header needs {data_offset + pos}")


def _validate(
    p: Path, tensors: dict[str, Any], data_len: int
) -> list[tuple[TensorInfo, np.dtype, int]]:
    out = []
    for name, spec in tensors.items():
        if not isinstance(spec, dict):
            raise FormatError(p, "header entry must be an object", name)
        code = spec.get("dtype")
        if not isinstance(code, str) or code not in DTYPES:  # a list/dict is not hashable
            raise FormatError(p, f"unsupported dtype {code!r}", name)
        np_dtype, logical = DTYPES[code]
        shape = check_shape(p, name, spec.get("shape"), data_len // np_dtype.itemsize)
        offsets = spec.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise FormatError(p, f"data_offsets must be two integers, got {offsets!r:.60}", name)
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise FormatError(p, f"data_offsets {offsets} outside the {data_len}-byte buffer", name)
        nbytes = int(np.prod(shape, dtype=object)) * np_dtype.itemsize
        if end - begin != nbytes:
            raise FormatError(
                p, f"data_offsets span {end - begin} bytes, shape needs {nbytes}", name
            )
        axis = 0 if len(shape) >= 2 else None
        info = TensorInfo(name, shape, logical, layer_of(name, "."), channel_axis=axis)
        out.append((info, np_dtype, begin))
    out.sort(key=lambda s: (tensors[s[0].name]["data_offsets"][0], s[0].size > 0))
    _check_tiling(p, tensors, out, data_len)
    return out


def _check_tiling(p: Path, tensors: dict[str, Any], specs: list[Any], data_len: int) -> None:
    pos = 0
    for info, _, _ in specs:
        begin, end = tensors[info.name]["data_offsets"]
        if begin < pos:
            raise FormatError(p, "data_offsets overlap the previous tensor", info.name)
        if begin > pos:
            raise FormatError(p, f"{begin - pos} unused bytes before this tensor", info.name)
        pos = end
    if pos != data_len:
        raise FormatError(p, f"buffer holds {data_len - pos} bytes no tensor uses")


def _loader(
    data: PositionalFile, offset: int, info: TensorInfo, np_dtype: np.dtype
) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        values = value_dtype(info.dtype) if info.dtype in ML_DTYPES else np_dtype
        if info.size == 0:
            return np.zeros(info.shape, dtype=values)
        raw = data.read(offset, info.size * np_dtype.itemsize, info.name)
        return raw.view(np_dtype).view(values).reshape(info.shape)

    return load
