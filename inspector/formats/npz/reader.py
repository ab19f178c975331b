"""npz reader (`numpy.savez` / `savez_compressed`): a zip of `.npy` members, never unpickled.

Opening reads each member's `.npy` header only (dtype, shape, order), through the same
`numpy.lib.format` functions `numpy.load` uses, with `allow_pickle=False`; object arrays are
refused before any data is read. A member's declared size must match its shape, and a deflated
member may not claim more than deflate can expand to (~1032:1), so a zip bomb is refused
instead of allocated. `load()` decompresses one member on demand.

Metadata keys: `npz_members` (zip member names in file order), `npz_plan` (the plan JSON an
npz export of this tool records as `__quant_inspector_plan__.npy`; that member is not listed
as a tensor — any other member of that name is).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor, TensorInfo

__all__ = ["read_npz"]

_DEFLATE_MAX_RATIO = 1100
_PLAN_MEMBER = "__quant_inspector_plan__.npy"
_MAX_PLAN_MEMBER = 64 << 20


def read_npz(path: str | os.PathLike[str]) -> Model:
    """Open an `.npz` archive, reading only the `.npy` headers."""
    p = Path(path)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise FormatError(p, f"not a readable npz (zip) archive: {exc}") from None
    try:
        members = _members(zf)
        plan = _own_plan(zf, members)
        if plan is not None:
            members = [i for i in members if i.filename != _PLAN_MEMBER]
        tensors = [_member_tensor(zf, info, p) for info in members]
        names = [t.name for t in tensors]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise FormatError(p, "duplicate tensor name", dup)
    except BaseException:
        zf.close()
        raise
    meta: dict[str, Any] = {"npz_members": [i.filename for i in _members(zf)]}
    if plan is not None:
        meta["npz_plan"] = plan
    return Model(p, "npz", tensors, meta, [zf.close])


def _own_plan(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> str | None:
    """The plan record this tool's npz export appends (`__quant_inspector_plan__.npy`: a 1-D
    uint8 array of plan JSON), or None. Only a member that really is such a record is taken
    out of the tensor list; a user's tensor of that name stays a tensor."""
    info = next((i for i in members if i.filename == _PLAN_MEMBER), None)
    if info is None or info.file_size > _MAX_PLAN_MEMBER:
        return None
    try:
        with zf.open(info) as fh:
            arr = np.lib.format.read_array(fh, allow_pickle=False)
        if arr.dtype != np.uint8 or arr.ndim != 1:
            return None
        text = arr.tobytes().decode("utf-8")
        doc = json.loads(text)
    except (ValueError, RecursionError, OSError, EOFError, zipfile.BadZipFile):
        return None
    except Exception:  # numpy's header parser raises many types on garbage
        return None
    return text if isinstance(doc, dict) and "overrides" in doc else None


def _members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members that are files (`ZipInfo.is_dir` raises IndexError on an empty name)."""
    return [i for i in zf.infolist() if not i.filename.endswith("/")]


def _member_tensor(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> Tensor:
    name = info.filename.removesuffix(".npy")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
        raise FormatError(p, "unsupported zip compression or encryption", name)
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > (
        _DEFLATE_MAX_RATIO * info.compress_size + 1024
    ):
        raise FormatError(p, f"member declares {info.file_size} bytes, a zip bomb", name)
    try:
        with zf.open(info) as fh:
            shape, _fortran, dtype = _read_header(fh)
            header_len = fh.tell()
    except FormatError:
        raise
    except Exception as exc:  # numpy's header parser raises many types on garbage
        raise FormatError(p, f"not a valid .npy member: {exc}", name) from None
    if dtype.hasobject:
        raise FormatError(p, "object arrays need pickle, which is never used", name)
    if dtype.kind not in "fiubc" or dtype.fields is not None:
        raise FormatError(p, f"unsupported dtype {dtype}", name)
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if header_len + nbytes != info.file_size:
        raise FormatError(
            p, f"shape {list(shape)} needs {nbytes} bytes, member holds "
            f"{info.file_size - header_len}", name
        )  # fmt: skip
    layer = name.rpartition("/" if "/" in name else ".")[0] or name
    info_t = TensorInfo(name, tuple(shape), dtype.newbyteorder("=").name, layer)
    return Tensor(info_t, _loader(zf, info, p, name))


def _read_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f"unknown .npy version {version}")


def _loader(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path, name: str
) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            with zf.open(info) as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)
        except Exception as exc:
            raise FormatError(p, f"cannot read values: {exc}", name) from None

    return load
