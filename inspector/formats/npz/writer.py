"""npz writer: each tensor's dequantized values (what a runtime would see) plus the plan.

Members are `<tensor name>.npy`, stored (not deflated) in model order, so `numpy.load` (no
pickle needed) returns exactly the preview's decoded float32 values; float16-scheme tensors are
stored as float16 (exact), kept tensors in their own dtype. The plan is the last member,
`__quant_inspector_plan__.npy`: a uint8 array of the resolved plan's JSON (see
`_write_common.resolved_plan`), read back by `bytes(arr).decode()`. Optimizer state is left out.

The zip container (local and central headers, `.npy` headers, the plan member) is built the
same way with empty data for the preview's `overhead_bytes`, so predicted size = written size
(exact below 4 GiB, where zip64 offsets would add a few bytes per member).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import parse_scheme
from inspector.core.target import Target
from inspector.formats._write_common import (
    PLAN_KEY,
    dequantized_storage,
    plain_dtype,
    plain_values,
    resolved_plan_json,
)
from inspector.formats.base import ExportOptions

__all__ = ["NPZ", "stored_array", "write", "write_npz_entries"]

_EPOCH = (1980, 1, 1, 0, 0, 0)
_CHUNK = 16 << 20


def _npy_dtype(dtype: str) -> np.dtype:
    return np.dtype("float32") if dtype == "bfloat16" else np.dtype(dtype)


def stored_array(q: QuantizedTensor) -> np.ndarray:
    """The array the npz holds for one quantized tensor (shape of the tensor)."""
    arr = plain_values(q)
    return arr.astype(np.float32) if arr.dtype.name == "bfloat16" else arr


def write_npz_entries(
    fh: BinaryIO, entries: Iterable[tuple[str, np.dtype, tuple[int, ...], np.ndarray | None]]
) -> None:
    """Write an npz: (name, dtype, shape, values or None for header-only) per member."""
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, dtype, shape, values in entries:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as ent:
                header = {
                    "descr": np.lib.format.dtype_to_descr(dtype),
                    "fortran_order": False,
                    "shape": tuple(shape),
                }
                np.lib.format.write_array_header_1_0(ent, header)
                if values is not None:
                    flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
                    for start in range(0, flat.size, _CHUNK):
                        ent.write(flat[start : start + _CHUNK].data)


def _plan_entry(pairs: Sequence[tuple[str, str]]) -> tuple[str, np.dtype, tuple[int, ...], Any]:
    data = np.frombuffer(resolved_plan_json(pairs).encode("ascii"), dtype=np.uint8)
    return PLAN_KEY, data.dtype, data.shape, data


def _is_old_plan(info: TensorInfo) -> bool:
    """A plan member of an npz this program wrote (uint8 bytes of JSON): replaced, not kept."""
    return info.name == PLAN_KEY and info.dtype == "uint8" and len(info.shape) == 1


def _weights(model: Model, stream: Iterable[QuantizedTensor]) -> Iterator[QuantizedTensor]:
    """The tensors to write; a tensor of the user's under the plan's member name is refused
    (it used to vanish from the export silently)."""
    for q in stream:
        if q.info.name == PLAN_KEY and not _is_old_plan(q.info):
            raise FormatError(
                model.path,
                "this name is the member the npz export keeps its plan in; rename the tensor "
                "or export to another format",
                PLAN_KEY,
            )
        if not q.info.optimizer and q.info.name != PLAN_KEY:
            yield q


def write(
    model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: ExportOptions
) -> list[Path]:
    """Write the npz to `dest` (a temporary path the caller renames into place)."""
    pairs: list[tuple[str, str]] = []

    def entries() -> Iterator[tuple[str, np.dtype, tuple[int, ...], np.ndarray | None]]:
        for q in _weights(model, stream):
            pairs.append((q.info.name, q.scheme.spec))
            arr = stored_array(q)
            yield q.info.name, arr.dtype, q.info.shape, arr
        yield _plan_entry(pairs)

    with open(dest, "wb") as fh:
        write_npz_entries(fh, entries())
    return [dest]


def _row_dtype(model: Model, row: Any) -> np.dtype:
    if row.skipped is not None or row.stored == model[row.name].info.dtype:
        return _npy_dtype(model[row.name].info.dtype)
    return plain_dtype(parse_scheme(row.stored))


def npz_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """The npz's container bytes (everything but the tensors' values), as written."""
    rows = [r for r in previews if not r.optimizer]
    pairs = [(r.name, r.scheme) for r in rows]
    entries = [(r.name, _row_dtype(model, r), tuple(r.shape), None) for r in rows]
    buf = BytesIO()
    write_npz_entries(buf, [*entries, _plan_entry(pairs)])
    return buf.getvalue()


NPZ = Target("npz", dequantized_storage, npz_overhead)
