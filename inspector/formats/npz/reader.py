"""npz reader (`numpy.savez` / `savez_compressed`): a zip of `.npy` members, never unpickled.

Opening reads each member's `.npy` header only (dtype, shape, order), through the same
`numpy.lib.format` functions `numpy.load` uses, with `allow_pickle=False`; object arrays are
refused before any data is read. A member's declared size must match its shape, so what a
header declares is what decompression may produce, and never more.

Deflate bombs: deflate expands at most ~1032:1, so a member claiming more is refused (forged
sizes). Within that ratio, a few MB could still decompress to gigabytes at preview, so a
deflated member above `LARGE_MEMBER` bytes may expand at most `LARGE_RATIO`:1, and all members
together at most `max(TOTAL_FLOOR, LARGE_RATIO × archive size)` bytes. Memory per input byte is
then ≤ 64 above 256 MiB. Real weights deflate 1.1–10:1; a zero-initialized tensor up to 256 MiB
still opens; past the bounds the error says how to re-save the file (uncompressed).

`load()` re-reads the member's header, requires the shape and dtype found at open (the file may
have been rewritten since), and reads exactly the declared bytes in 16 MiB chunks.

Metadata keys: `npz_members` (zip member names in file order), `npz_plan` (the plan JSON an
npz export of this tool records as `__quant_inspector_plan__.npy`; that member is not listed
as a tensor — any other member of that name is).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor, TensorInfo
from inspector.formats._common import check_shape, check_unique
from inspector.formats._mmap import check_regular

__all__ = ["LARGE_MEMBER", "LARGE_RATIO", "NpyMember", "load_npy_arrays", "npy_members", "read_npz"]

_DEFLATE_MAX_RATIO = 1100
LARGE_MEMBER = 256 << 20
LARGE_RATIO = 64
TOTAL_FLOOR = 1 << 30
_CHUNK = 16 << 20
_PLAN_MEMBER = "__quant_inspector_plan__"
_MAX_PLAN_MEMBER = 64 << 20


@dataclass(frozen=True)
class NpyMember:
    """One `.npy` member, header checked: its tensor name (member name without `.npy`), shape,
    dtype (native byte order kept as stored) and where its data starts in the member."""

    zf: zipfile.ZipFile
    info: zipfile.ZipInfo
    path: Path
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize

    def load(self) -> np.ndarray:
        """The member's values (read-only), after checking its header is unchanged."""
        try:
            with self.zf.open(self.info) as fh:
                if _read_header(fh) != (self.shape, self.fortran, self.dtype):
                    raise FormatError(self.path, "member changed since it was opened", self.name)
                data = _read_exactly(fh, self.nbytes, self.path, self.name)
            arr = data.view(self.dtype).reshape(self.shape, order="F" if self.fortran else "C")
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(self.path, f"cannot read values: {exc}", self.name) from None
        arr.flags.writeable = False
        return arr


def read_npz(path: str | os.PathLike[str]) -> Model:
    """Open an `.npz` archive, reading only the `.npy` headers."""
    p = Path(path)
    zf = _open_zip(p)
    try:
        members = npy_members(zf, p)
        for m in members:
            if m.dtype.kind not in "fiubc" or m.dtype.fields is not None:
                raise FormatError(p, f"unsupported dtype {m.dtype}", m.name)
        check_unique(p, (m.name for m in members))
        plan = _own_plan(members)
        tensors = [
            Tensor(_info(m), m.load) for m in members if plan is None or m.name != _PLAN_MEMBER
        ]
    except BaseException:
        zf.close()
        raise
    meta: dict[str, Any] = {"npz_members": [m.info.filename for m in members]}
    if plan is not None:
        meta["npz_plan"] = plan
    return Model(p, "npz", tensors, meta, [zf.close])


def _own_plan(members: list[NpyMember]) -> str | None:
    """The plan record this tool's npz export appends (`__quant_inspector_plan__.npy`: a 1-D
    uint8 array of plan JSON), or None. Only a member that really is such a record is taken
    out of the tensor list; a user's tensor of that name stays a tensor."""
    m = next((m for m in members if m.name == _PLAN_MEMBER), None)
    if m is None or m.dtype != np.uint8 or len(m.shape) != 1 or m.nbytes > _MAX_PLAN_MEMBER:
        return None
    try:
        text = m.load().tobytes().decode("utf-8")
        doc = json.loads(text)
    except (FormatError, ValueError, RecursionError):
        return None
    return text if isinstance(doc, dict) and "overrides" in doc else None


def load_npy_arrays(
    path: str | os.PathLike[str], wanted: Callable[[str], bool]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every member name of an `.npz`, and the arrays of the `wanted` ones (with the checks of
    `read_npz`: headers, declared sizes, bombs; never unpickled). For sample data: only the
    arrays used are decompressed."""
    p = Path(path)
    with _open_zip(p) as zf:
        members = npy_members(zf, p)
        check_unique(p, (m.name for m in members))
        return [m.name for m in members], {m.name: m.load() for m in members if wanted(m.name)}


def _info(m: NpyMember) -> TensorInfo:
    layer = m.name.rpartition("/" if "/" in m.name else ".")[0] or m.name
    return TensorInfo(m.name, m.shape, m.dtype.newbyteorder("=").name, layer)


def _open_zip(p: Path) -> zipfile.ZipFile:
    check_regular(p)
    try:
        return zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise FormatError(p, f"not a readable npz (zip) archive: {exc}") from None


def npy_members(zf: zipfile.ZipFile, p: Path) -> list[NpyMember]:
    """Every file member's checked header, in file order (directories skipped; an empty name
    makes `ZipInfo.is_dir` raise IndexError). Raises `FormatError` naming `p` and the member
    for compression, bombs, a header numpy cannot parse, object dtypes, or a declared size the
    member does not hold."""
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    _check_total(infos, p)
    return [_member(zf, info, p) for info in infos]


def _check_total(infos: list[zipfile.ZipInfo], p: Path) -> None:
    total = sum(i.file_size for i in infos)
    try:
        limit = max(TOTAL_FLOOR, LARGE_RATIO * p.stat().st_size)
    except OSError as exc:
        raise FormatError(p, f"cannot read: {exc.strerror or exc}") from None
    if total > limit:
        raise FormatError(
            p,
            f"members declare {total} bytes in all, more than {limit} (at most "
            f"{LARGE_RATIO}x the archive, or 1 GiB): a deflate bomb? Re-save it with "
            "numpy.savez (uncompressed)",
        )


def _check_member_size(info: zipfile.ZipInfo, p: Path, name: str) -> None:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 1:
        raise FormatError(p, "unsupported zip compression or encryption", name)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return
    if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise FormatError(p, f"member declares {info.file_size} bytes, a zip bomb", name)
    if info.file_size > max(LARGE_MEMBER, LARGE_RATIO * info.compress_size):
        raise FormatError(
            p,
            f"member inflates {info.compress_size} bytes to {info.file_size}; above 256 MiB "
            f"at most {LARGE_RATIO}:1 is accepted (a deflate bomb?). Re-save it with "
            "numpy.savez (uncompressed)",
            name,
        )


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> NpyMember:
    name = info.filename.removesuffix(".npy")
    _check_member_size(info, p, name)
    try:
        with zf.open(info) as fh:
            shape, fortran, dtype = _read_header(fh)
            header_len = fh.tell()
    except FormatError:
        raise
    except Exception as exc:  # numpy's header parser raises many types on garbage
        raise FormatError(p, f"not a valid .npy member: {exc}", name) from None
    if dtype.hasobject:
        raise FormatError(p, "object arrays need pickle, which is never used", name)
    member = NpyMember(zf, info, p, name, check_shape(p, name, list(shape)), dtype, fortran)
    if header_len + member.nbytes != info.file_size:
        raise FormatError(
            p, f"shape {list(shape)} needs {member.nbytes} bytes, member holds "
            f"{info.file_size - header_len}", name
        )  # fmt: skip
    return member


def _read_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version in ((2, 0), (3, 0)):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f"unknown .npy version {version}")


def _read_exactly(fh: Any, nbytes: int, p: Path, name: str) -> np.ndarray:
    """`nbytes` bytes from `fh` into a new uint8 array, in chunks (no second full copy)."""
    out = np.empty(nbytes, dtype=np.uint8)
    pos = 0
    while pos < nbytes:
        chunk = fh.read(min(_CHUNK, nbytes - pos))
        if not chunk:
            raise FormatError(p, f"member ends {nbytes - pos} bytes early", name)
        out[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        pos += len(chunk)
    return out
