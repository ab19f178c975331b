"""PyTorch checkpoints (`.bin`, `.pt`, `.pth`: `torch.save`'s zip format), never unpickled.

The zip holds `<archive>/data.pkl` (the object, pickle protocol 2) and one record
`<archive>/data/<key>` per storage. `data.pkl` goes through the restricted unpickler
(`unpickler.py`: an allowlist of torch's rebuild functions, storage types and dtypes mapped to
our stand-ins; any other global is refused by name), the result is flattened to dotted tensor
names (`flatten.py`), and each tensor becomes a lazy strided view of its storage: records
stored uncompressed (as `torch.save` writes them, 64-byte aligned) are read at their offset
(positional reads, so a file truncated meanwhile gives an error, never a SIGBUS), deflated ones
(a re-zipped file) are inflated on `load()`. Each storage record must hold exactly its
elements, and each view (offset, sizes, strides) must stay inside its storage.

Refused with a reason: legacy (pre-1.6) pickle files, TorchScript archives, big-endian
archives, sparse or quantized tensors, any global outside the allowlist. Layout: PyTorch's
(out, in, …) so `channel_axis` is 0 for ndim ≥ 2. float8 tensors load as float32 with the
float8 type as their stored quantization.

Metadata keys: `torch_archive` (the record prefix), `torch_aliases` (repeated name → listed
name: tied weights), `torch_shared_storages` (storage key → tensors that view it, when
several), `torch_extra` (non-tensor leaves such as `epoch`, as text).
"""

from __future__ import annotations

import math
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, StoredQuantization, Tensor, TensorInfo
from inspector.formats._common import layer_of, stored_member_offset
from inspector.formats._dtypes import ML_DTYPES, value_dtype
from inspector.formats._mmap import PositionalFile, check_regular
from inspector.formats.torch.flatten import Flat, TooLarge, flatten
from inspector.formats.torch.unpickler import (
    DTYPES,
    Refused,
    StorageRef,
    TensorRef,
    restricted_load,
)

__all__ = ["LEGACY_MAGIC", "read_torch"]

LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
"""How a pre-1.6 `torch.save` file starts: pickle protocol 2, then its magic number."""
_MAX_PICKLE = 256 << 20
_DEFLATE_MAX_RATIO = 1100
_DECODED = {"float8_e4m3fn", "float8_e5m2"}
_REPEAT_LIMIT = 64


class _Record:
    """Where a storage's bytes are: a mapped range of the file (a stored member), or a
    deflated member inflated on load. A stored member's data offset comes from its local
    header, read on first load: reading 291 local headers scattered over a cold 13 GB file
    at open would cost ~0.5 s of disk seeks."""

    def __init__(self, p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        self.path, self.zf, self.info = p, zf, info
        self.stored = info.compress_type == zipfile.ZIP_STORED
        self._offset: int | None = None

    def offset(self) -> int:
        if self._offset is None:
            try:
                with open(self.path, "rb") as fh:
                    offset = stored_member_offset(fh, self.info, self.path)
                    end = os.fstat(fh.fileno()).st_size
            except OSError as exc:
                raise FormatError(self.path, f"cannot read: {exc.strerror or exc}") from None
            if offset + self.info.file_size > end:
                raise FormatError(
                    self.path, f"storage record {self.info.filename} runs past the end of the file"
                )
            self._offset = offset
        return self._offset


def read_torch(path: str | os.PathLike[str]) -> Model:
    """Open a PyTorch zip checkpoint: unpickle `data.pkl` restrictedly, map the storages."""
    p = Path(path)
    _refuse_legacy(p)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise FormatError(p, f"not a PyTorch zip checkpoint: {exc}") from None
    data = None
    try:
        prefix = _archive_prefix(p, zf)
        obj, storages = _unpickle(p, zf, prefix)
        data = PositionalFile(p)
        size = os.fstat(zf.fp.fileno()).st_size if zf.fp is not None else 0
        records = {k: _record(p, zf, prefix, ref, size) for k, ref in storages.items()}
        flat = _flatten(p, obj)
        tensors = [
            Tensor(_info(p, name, t, opt), _loader(p, data, records[t.storage.key], t, name))
            for name, t, opt in flat.tensors
        ]
    except BaseException:
        if data is not None:
            data.close()
        zf.close()
        raise
    shared: dict[str, list[str]] = {}
    for name, t, _ in flat.tensors:
        shared.setdefault(t.storage.key, []).append(name)
    meta = {
        "torch_archive": prefix,
        "torch_aliases": flat.aliases,
        "torch_shared_storages": {k: v for k, v in shared.items() if len(v) > 1},
        "torch_extra": flat.extras,
    }
    return Model(p, "torch", tensors, meta, [data.close, zf.close])


def _refuse_legacy(p: Path) -> None:
    check_regular(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(LEGACY_MAGIC))
    except OSError as exc:
        raise FormatError(p, f"cannot read: {exc.strerror or exc}") from None
    if head == LEGACY_MAGIC:
        raise FormatError(
            p,
            "legacy PyTorch file (saved before torch 1.6 or with "
            "_use_new_zipfile_serialization=False): re-save it with a current torch.save",
        )
    if head[:1] == b"\x80":
        raise FormatError(
            p, "a bare pickle, not a PyTorch zip checkpoint: pickles are never loaded"
        )


def _archive_prefix(p: Path, zf: zipfile.ZipFile) -> str:
    names = zf.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise FormatError(p, "a TorchScript archive (torch.jit.save): save its state_dict instead")
    if len(pkls) != 1:
        raise FormatError(p, f"expected one <archive>/data.pkl in the zip, found {len(pkls)}")
    prefix = pkls[0].rsplit("/", 1)[0]
    order = f"{prefix}/byteorder"
    if order in names and zf.read(order).strip() not in (b"little", b""):
        raise FormatError(p, "a big-endian checkpoint: re-save it on a little-endian machine")
    return prefix


def _member_bytes(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    _check_member(p, info)
    if info.file_size > limit:
        raise FormatError(p, f"{info.filename} is {info.file_size} bytes, more than {limit}")
    try:
        with zf.open(info) as fh:
            return fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise FormatError(p, f"cannot read {info.filename}: {exc}") from None


def _check_member(p: Path, info: zipfile.ZipInfo) -> None:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
        raise FormatError(p, f"{info.filename}: unsupported zip compression or encryption")
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > (
        _DEFLATE_MAX_RATIO * info.compress_size + 1024
    ):
        raise FormatError(p, f"{info.filename} declares {info.file_size} bytes: a zip bomb")


def _unpickle(p: Path, zf: zipfile.ZipFile, prefix: str) -> tuple[object, dict[str, StorageRef]]:
    data = _member_bytes(p, zf, zf.getinfo(f"{prefix}/data.pkl"), _MAX_PICKLE)
    try:
        return restricted_load(data)
    except Refused as exc:
        raise FormatError(p, f"data.pkl refused: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
    ) as exc:
        raise FormatError(p, f"data.pkl is malformed: {type(exc).__name__}: {exc}") from None
    except (MemoryError, RecursionError, OverflowError) as exc:
        raise FormatError(p, f"data.pkl is too large to rebuild: {type(exc).__name__}") from None


def _flatten(p: Path, obj: object) -> Flat:
    try:
        return flatten(obj)
    except TooLarge as exc:
        raise FormatError(p, str(exc)) from None


def _record(p: Path, zf: zipfile.ZipFile, prefix: str, ref: StorageRef, size: int) -> _Record:
    name = f"{prefix}/data/{ref.key}"
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise FormatError(p, f"storage record {name} is missing") from None
    _check_member(p, info)
    itemsize = DTYPES[ref.dtype][0].itemsize if ref.dtype is not None else 1
    if info.file_size != ref.numel * itemsize:
        raise FormatError(
            p, f"storage record {name} holds {info.file_size} bytes, the pickle says "
            f"{ref.numel} × {itemsize}"
        )  # fmt: skip
    if info.header_offset + 30 + len(info.filename) + info.file_size > size:
        raise FormatError(p, f"storage record {name} runs past the end of the file")
    return _Record(p, zf, info)


def _info(p: Path, name: str, t: TensorRef, optimizer: bool) -> TensorInfo:
    if t.dtype not in DTYPES:
        raise FormatError(p, f"unsupported dtype {t.dtype}", name)
    itemsize = DTYPES[t.dtype][0].itemsize
    numel = t.storage.numel if t.storage.dtype is not None else t.storage.numel // itemsize
    count = math.prod(t.shape)
    if count:
        last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.stride, strict=True))
        if last >= numel:
            raise FormatError(
                p, f"view (offset {t.offset}, size {list(t.shape)}, stride {list(t.stride)}) "
                f"runs past its storage of {numel} elements", name
            )  # fmt: skip
        if count > _REPEAT_LIMIT * numel:
            raise FormatError(p, f"view repeats its {numel}-element storage {count} times", name)
    axis = 0 if len(t.shape) >= 2 else None
    if t.dtype in _DECODED:
        stored = StoredQuantization(t.dtype, {"bits_per_weight": 8})
        return TensorInfo(name, t.shape, "float32", layer_of(name, "."), optimizer, stored, axis)
    return TensorInfo(name, t.shape, DTYPES[t.dtype][1], layer_of(name, "."), optimizer, None, axis)


def _loader(
    p: Path, data: PositionalFile, rec: _Record, t: TensorRef, name: str
) -> Callable[[], np.ndarray]:
    """Reads only the elements the view spans (q/k/v views of one fused storage read their
    third each), then strides over them."""
    dtype = DTYPES[t.dtype][0]
    size = dtype.itemsize
    opaque = np.dtype((np.void, size))  # as_strided needs __array_interface__: ml_dtypes lack it
    count = math.prod(t.shape)
    span = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride, strict=True)) if count else 0

    def load() -> np.ndarray:
        if rec.stored:
            raw = data.read(rec.offset() + t.offset * size, span * size, name)
            items = raw.view(opaque)
        else:
            whole = _member_bytes(p, rec.zf, rec.info, rec.info.file_size)
            items = np.frombuffer(whole, np.uint8, len(whole) - len(whole) % size).view(opaque)
            items = items[t.offset : t.offset + span]
        view = np.lib.stride_tricks.as_strided(
            items, shape=t.shape, strides=tuple(s * size for s in t.stride), writeable=False
        ).view(value_dtype(t.dtype) if t.dtype in ML_DTYPES else dtype)
        return view.astype(np.float32) if t.dtype in _DECODED else view

    return load
