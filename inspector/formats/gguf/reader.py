"""GGUF reader: every metadata key/value, every tensor, bytes through one memory map per file.

Tensors are listed in the order of the header's tensor infos, shaped row-major (`ne` reversed:
a llama.cpp `(ne0=4096, ne1=11008)` matrix is `(11008, 4096)`, rows of 4096 values). Blocks of
the quantized types run along the rows, the last row-major axis; that axis is the input axis of
a PyTorch `(out, in)` weight, so `channel_axis` is 0 as for safetensors and per-channel schemes
treat GGUF rows like PyTorch rows. F32/F16/BF16/F64 and the integer types load as views of
the map; block types (Q4_K, IQ4_NL, …) decode to float32 on `load()` and carry their type as
the tensor's `StoredQuantization` (scheme = the lower-case type name, params = block size,
bytes per block, bits per weight, block axis, stored bytes).

A split model (`name-00001-of-00003.gguf`, keys `split.no`, `split.count`,
`split.tensors.count`, as `llama-gguf-split` writes it) opens as one model from any of its
files: every split must be beside it, numbered in order, with the declared tensor count.

Metadata keys: `gguf_version`, `gguf_alignment`, `gguf_metadata` (key → value; arrays
summarised as `{"array": item type, "length": n, "first": [...]}`), `gguf_fields` (the
`GGUFField`s of the first file, for writers), `gguf_header_file` (the file holding them),
`gguf_tensors` (name → `GGUFTensorInfo`), `source_files` (every file read).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, StoredQuantization, Tensor, TensorInfo
from inspector.formats._common import layer_of
from inspector.formats._dtypes import storage_dtype, value_dtype
from inspector.formats._mmap import PositionalFile, close_map, map_file
from inspector.formats.gguf.header import GGUFField, GGUFHeader, GGUFTensorInfo, parse_header

__all__ = ["PLAIN_TYPES", "field_bytes", "is_split_key", "read_gguf"]

# ggml types stored as plain arrays → (numpy dtype of the bytes, logical dtype name); bf16's
# bytes are viewed as ml_dtypes.bfloat16 at load (ml_dtypes is not imported to open a file)
PLAIN_TYPES: dict[str, tuple[np.dtype, str]] = {
    "f32": (np.dtype("<f4"), "float32"),
    "f16": (np.dtype("<f2"), "float16"),
    "bf16": (storage_dtype("bfloat16"), "bfloat16"),
    "f64": (np.dtype("<f8"), "float64"),
    "i8": (np.dtype("i1"), "int8"),
    "i16": (np.dtype("<i2"), "int16"),
    "i32": (np.dtype("<i4"), "int32"),
    "i64": (np.dtype("<i8"), "int64"),
}
_SPLIT_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
_SPLIT_KEYS = ("split.no", "split.count", "split.tensors.count")


class _File:
    """One opened GGUF file: its header (parsed from a memory map, closed right after) and a
    positional reader for the tensors' bytes (a file truncated later gives an error, not a
    SIGBUS in the middle of a preview)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        mm, _ = map_file(path)
        try:
            self.header = parse_header(mm if mm is not None else b"", path)
        finally:
            close_map(mm)
        self.data = PositionalFile(path)

    def close(self) -> None:
        self.data.close()


def read_gguf(path: str | os.PathLike[str]) -> Model:
    """Open a GGUF file (or a split model through any of its files): headers only."""
    p = Path(path)
    files = [_File(p)]
    try:
        files = _with_splits(files[0])
        tensors = [t for f in files for t in _tensors(f)]
        _check_split_total(files, len(tensors))
    except BaseException:
        for f in files:
            f.close()
        raise
    first = files[0]
    meta = {
        "gguf_version": first.header.version,
        "gguf_alignment": first.header.alignment,
        "gguf_metadata": {f.key: f.display() for f in first.header.fields},
        "gguf_fields": first.header.fields,
        "gguf_header_file": first.path,
        "gguf_tensors": {t.name: t for f in files for t in f.header.tensors},
        "source_files": [f.path for f in files],
    }
    return Model(first.path, "gguf", tensors, meta, [f.close for f in files])


def _split_count(header: GGUFHeader) -> int:
    count = header.get("split.count", 1)
    return count if isinstance(count, int) and not isinstance(count, bool) else 1


def _with_splits(opened: _File) -> list[_File]:
    """All files of a split model in order (just `opened` when it is not split)."""
    count = _split_count(opened.header)
    if count <= 1:
        return [opened]
    m = _SPLIT_NAME.match(opened.path.name)
    if m is None or int(m["count"]) != count:
        opened.close()
        raise FormatError(
            opened.path,
            f"split GGUF (split.count {count}) whose name does not say which split it is: "
            f"expected NAME-0000N-of-{count:05d}.gguf (merge with llama-gguf-split --merge)",
        )
    files: list[_File] = []
    try:
        for i in range(count):
            name = f"{m['prefix']}-{i + 1:05d}-of-{count:05d}.gguf"
            path = opened.path.with_name(name)
            if path == opened.path:
                files.append(opened)
            elif not path.is_file():
                raise FormatError(path, f"split {i + 1} of {count} is missing")
            else:
                files.append(_File(path))
            _check_split(files[-1], i, count)
    except BaseException:
        for f in files:
            if f is not opened:
                f.close()
        opened.close()
        raise
    return files


def _check_split(f: _File, index: int, count: int) -> None:
    no, n = f.header.get("split.no"), _split_count(f.header)
    if no != index or n != count:
        raise FormatError(
            f.path, f"split.no {no!r} / split.count {n!r}, expected {index} / {count}"
        )


def _check_split_total(files: list[_File], n_tensors: int) -> None:
    names: set[str] = set()
    for f in files:
        for t in f.header.tensors:
            if t.name in names:
                raise FormatError(f.path, "tensor appears in two splits", t.name)
            names.add(t.name)
    declared = files[0].header.get("split.tensors.count")
    if len(files) > 1 and declared != n_tensors:
        raise FormatError(
            files[0].path, f"split.tensors.count is {declared!r}, the splits hold {n_tensors}"
        )


def _tensors(f: _File) -> list[Tensor]:
    return [Tensor(_info(t), _loader(f, t)) for t in f.header.tensors]


def _info(t: GGUFTensorInfo) -> TensorInfo:
    shape = t.shape
    axis = 0 if len(shape) >= 2 else None
    plain = PLAIN_TYPES.get(t.ggml.name)
    if plain is not None:
        return TensorInfo(t.name, shape, plain[1], layer_of(t.name, "."), channel_axis=axis)
    stored = StoredQuantization(
        t.ggml.name,
        {
            "ggml_type": t.ggml.name,
            "block_size": t.ggml.block_size,
            "block_bytes": t.ggml.type_size,
            "bits_per_weight": t.ggml.bits_per_weight,
            "block_axis": max(len(shape) - 1, 0),
            "nbytes": t.nbytes,
        },
    )
    return TensorInfo(t.name, shape, "float32", layer_of(t.name, "."), False, stored, axis)


def _loader(f: _File, t: GGUFTensorInfo) -> Callable[[], np.ndarray]:
    offset = f.header.data_offset + t.offset
    plain = PLAIN_TYPES.get(t.ggml.name)

    def load() -> np.ndarray:
        raw = f.data.read(offset, t.nbytes, t.name)
        if plain is not None:
            values = value_dtype(plain[1]) if plain[1] == "bfloat16" else plain[0]
            return raw.view(values).reshape(t.shape)
        from inspector.core.ggml.dequant import dequantize  # numba: only to decode blocks

        try:
            return dequantize(raw, t.ggml, t.shape)
        except (ValueError, KeyError, NotImplementedError) as exc:
            raise FormatError(f.path, f"cannot decode {t.ggml.name}: {exc}", t.name) from None

    return load


def field_bytes(model: Model, field: GGUFField) -> bytes:
    """The field's bytes exactly as the input file stores them (key, type and value)."""
    path = Path(model.metadata["gguf_header_file"])
    try:
        with open(path, "rb") as fh:
            fh.seek(field.offset)
            data = fh.read(field.nbytes)
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) != field.nbytes or data[8 : 8 + len(field.key.encode())] != field.key.encode():
        raise FormatError(path, f"metadata key {field.key!r} changed since the file was opened")
    return data


def is_split_key(key: str) -> bool:
    """`split.*` keys describe the input's splits, not the model: writers drop them."""
    return key in _SPLIT_KEYS
