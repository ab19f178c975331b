"""safetensors reader: u64 little-endian header length, JSON header, one memory-mapped buffer.

The header is validated as the reference implementation does: known dtypes, integer shapes,
`data_offsets` inside the buffer, each range exactly `elements × itemsize` long, and ranges
that tile the buffer with no overlap and no gap. Tensors are listed in buffer order (the file
order). `load()` returns a read-only view into the memory map, so opening a 14 GB file costs a
header read and values are paged in on demand. Mapped pages count in the process's RSS, so
the pages of all but the last few tensors loaded are given back (`madvise(MADV_DONTNEED)`:
they stay in the page cache and a later access faults them back in): reading every tensor of
a 14 GB file keeps RSS bounded by a few tensors, not the file.
BF16 tensors load as `ml_dtypes.bfloat16` (imported on the first load, not at open).
PyTorch layouts put the output channel first, so `channel_axis` is 0 for ndim ≥ 2.

Metadata keys: `safetensors_metadata` (the `__metadata__` dict, {} when absent),
`safetensors_header` (the parsed header without `__metadata__`, in file order),
`data_offset` (byte offset of the buffer in the file).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor, TensorInfo
from inspector.formats._common import check_shape, layer_of, load_json_bytes
from inspector.formats._dtypes import ML_DTYPES, storage_dtype, value_dtype
from inspector.formats._mmap import ResidentPages as _ResidentPages
from inspector.formats._mmap import close_map as _close

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


def read_safetensors(path: str | os.PathLike[str]) -> Model:
    """Open a safetensors file: parse and validate the header, memory-map the buffer."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            header = _read_header(fh, p, size)
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    except OSError as exc:
        raise FormatError(p, f"cannot read: {exc.strerror or exc}") from None
    data_offset = 8 + header["__length__"]
    try:
        specs = _validate(p, header["__tensors__"], size - data_offset)
    except BaseException:
        if mm is not None:
            mm.close()
        raise
    pages = _ResidentPages(mm)
    tensors = [
        Tensor(info, _loader(p, mm, data_offset + begin, info, np_dtype, pages))
        for info, np_dtype, begin in specs
    ]
    meta = {
        "safetensors_metadata": header["__metadata__"],
        "safetensors_header": {info.name: header["__tensors__"][info.name] for info, _, _ in specs},
        "data_offset": data_offset,
    }
    return Model(p, "safetensors", tensors, meta, [lambda: _close(mm)])


def _read_header(fh: Any, p: Path, size: int) -> dict[str, Any]:
    head = fh.read(8)
    if len(head) < 8:
        raise FormatError(p, f"file is {size} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_HEADER or n > size - 8:
        raise FormatError(p, f"header length {n} exceeds the file ({size} bytes) or 100 MB")
    doc = load_json_bytes(p, fh.read(n), "safetensors header")
    if not isinstance(doc, dict):
        raise FormatError(p, "safetensors header must be a JSON object")
    meta = doc.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(p, "__metadata__ must map strings to strings")
    return {"__length__": n, "__metadata__": meta, "__tensors__": doc}


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
    p: Path,
    mm: mmap.mmap | None,
    offset: int,
    info: TensorInfo,
    np_dtype: np.dtype,
    pages: _ResidentPages,
) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        values = value_dtype(info.dtype) if info.dtype in ML_DTYPES else np_dtype
        if info.size == 0 or mm is None:
            return np.zeros(info.shape, dtype=values)
        # Touching mapped pages past a shrunk file's end kills the process with SIGBUS.
        end = offset + info.size * np_dtype.itemsize
        try:
            now = os.stat(p).st_size
        except OSError as exc:
            raise FormatError(p, f"cannot read: {exc.strerror or exc}", info.name) from None
        if now < end:
            raise FormatError(p, f"file shrank to {now} bytes since it was opened", info.name)
        try:
            arr = np.frombuffer(mm, dtype=np_dtype, count=info.size, offset=offset)
        except (ValueError, TypeError) as exc:
            raise FormatError(p, f"cannot read values: {exc}", info.name) from None
        pages.used(offset, end - offset)
        return arr.view(values).reshape(info.shape)

    return load
