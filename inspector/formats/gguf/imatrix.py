"""llama.cpp importance-matrix files, read as `llama-quantize --imatrix` reads them.

Two formats (common/imatrix-loader.cpp, llama.cpp 0c1e57098):
- GGUF (what llama-imatrix writes today): per weight tensor `NAME.in_sum2` (F32, `ne0 × n_mat`
  sums of squared activations) and `NAME.counts` (F32, one count per matrix/expert), plus the
  keys `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`, which llama-quantize
  requires. The importance is `in_sum2 / lround(count)` per matrix (float32), 1 where a count
  is 0.
- legacy `.dat`: int32 entry count, then per entry int32 name length, name, int32 ncall,
  int32 nval, nval float32; optionally int32 chunk count and a dataset name. The importance is
  `values / ncall` (float32), the values themselves when ncall ≤ 0.
A file that is not valid GGUF is read as legacy, as llama-quantize does. Non-finite importances
are refused (llama-quantize stops on them too).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.schemes.llama import register_importance_reader

from ._gguf_min import GGUFError, parse_gguf

__all__ = ["Imatrix", "importances", "read_imatrix"]

_SUMS, _COUNTS = ".in_sum2", ".counts"
_REQUIRED = ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size")


@dataclass(frozen=True)
class Imatrix:
    """An importance matrix: per weight tensor name, `ne0 × n_expert` float32 importances (one
    per input column of each expert matrix), in the order llama-quantize uses them."""

    path: str
    entries: dict[str, np.ndarray]
    datasets: tuple[str, ...]
    chunk_count: int
    chunk_size: int
    legacy: bool

    def for_tensor(self, name: str, ne0: int, n_expert: int = 1) -> np.ndarray | None:
        """The importances of tensor `name` as `(n_expert, ne0)`, or None when the file has
        none for it. Raises FormatError when the sizes disagree (llama-quantize stops there,
        except for token_embd, which it quantizes without importances)."""
        values = self.entries.get(name)
        if values is None:
            return None
        if values.size != ne0 * n_expert:
            if name in ("token_embd.weight", "per_layer_token_embd.weight"):
                return None
            raise FormatError(
                self.path,
                f"importance matrix has {values.size} values, the tensor has rows of {ne0}"
                + (f" × {n_expert} experts" if n_expert > 1 else ""),
                name,
            )
        return values.reshape(n_expert, ne0)


def read_imatrix(path: str | os.PathLike[str]) -> Imatrix:
    """Read an imatrix file (GGUF or legacy .dat). Raises FormatError naming the file (and the
    entry) for anything llama-quantize would refuse or misread."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FormatError(p, f"cannot read: {exc.strerror or exc}") from None
    try:
        gguf = parse_gguf(data)
    except GGUFError as exc:
        if data[:4] == b"GGUF":
            raise FormatError(p, f"invalid GGUF imatrix: {exc}") from None
        gguf = None
    result = _from_gguf(p, gguf) if gguf is not None else _from_legacy(p, data)
    for name, values in result.entries.items():
        if not np.isfinite(values).all():
            raise FormatError(p, "importance matrix contains non-finite values", name)
    return result


def _from_gguf(p: Path, gguf: tuple[dict[str, Any], dict[str, tuple[int, np.ndarray]]]) -> Imatrix:
    kv, tensors = gguf
    if not tensors:
        raise FormatError(p, "no data (the GGUF file has no tensors)")
    missing = [k for k in _REQUIRED if k not in kv]
    if missing:
        raise FormatError(p, f"missing imatrix metadata: {', '.join(missing)}")
    datasets = kv["imatrix.datasets"]
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise FormatError(p, "imatrix.datasets is not an array of strings")
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, (type_id, values) in tensors.items():
        for suffix in (_SUMS, _COUNTS):
            if name.endswith(suffix) and name != suffix:
                if type_id != 0:
                    raise FormatError(p, f"{suffix[1:]} must be F32 (type {type_id})", name)
                pairs.setdefault(name[: -len(suffix)], {})[suffix] = values
    entries = {name: _normalize(p, name, pair) for name, pair in sorted(pairs.items())}
    return Imatrix(
        str(p),
        entries,
        tuple(datasets),
        _u32(p, kv, "imatrix.chunk_count"),
        _u32(p, kv, "imatrix.chunk_size"),
        legacy=False,
    )


def _u32(p: Path, kv: dict[str, Any], key: str) -> int:
    value = kv[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise FormatError(p, f"{key} is not an integer")
    return value


def _normalize(p: Path, name: str, pair: dict[str, np.ndarray]) -> np.ndarray:
    """in_sum2 divided by each matrix's count, as load_imatrix in tools/quantize does."""
    if _SUMS not in pair or _COUNTS not in pair:
        raise FormatError(p, "mismatched sums and counts", name)
    sums, counts = pair[_SUMS], pair[_COUNTS]
    if counts.size == 0 or sums.size % counts.size:
        raise FormatError(p, f"{sums.size} sums do not split into {counts.size} matrices", name)
    if not np.isfinite(counts).all():
        raise FormatError(p, "counts contain non-finite values", name)
    wide = counts.astype(np.float64)
    rounded = np.where(wide >= 0, np.floor(wide + 0.5), np.ceil(wide - 0.5)).astype(np.float32)
    per = sums.reshape(counts.size, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(rounded[:, None] > 0, per / rounded[:, None], np.float32(1.0))
    return out.astype(np.float32).reshape(-1)


def _from_legacy(p: Path, data: bytes) -> Imatrix:
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if n < 0 or pos + n > len(data):
            raise FormatError(p, f"not an imatrix file (GGUF or legacy): truncated at {what}")
        pos += n
        return data[pos - n : pos]

    def i32(what: str) -> int:
        return int(struct.unpack("<i", take(4, what))[0])

    n_entries = i32("the entry count")
    if n_entries < 1:
        raise FormatError(p, "not an imatrix file (GGUF or legacy): no entries")
    entries: dict[str, np.ndarray] = {}
    for i in range(n_entries):
        raw_name = take(i32(f"entry {i + 1}"), f"the name of entry {i + 1}")
        name = raw_name.split(b"\0")[0].decode("utf-8", "replace")
        ncall = i32(f"entry {name!r}")
        nval = i32(f"entry {name!r}")
        if nval < 1:
            raise FormatError(p, f"entry has {nval} values", name)
        sums = np.frombuffer(take(4 * nval, f"the values of {name!r}"), dtype="<f4")
        entries[name] = (sums / np.float32(ncall) if ncall > 0 else sums).astype(np.float32)
    chunk_count = 0
    datasets: tuple[str, ...] = ()
    if pos < len(data):
        chunk_count = i32("the chunk count") if pos + 4 <= len(data) else 0
        if pos + 4 <= len(data):
            n = i32("the dataset name")
            if 0 < n <= len(data) - pos:
                datasets = (take(n, "the dataset name").split(b"\0")[0].decode("utf-8", "replace"),)
    return Imatrix(str(p), entries, datasets, chunk_count, 0, legacy=True)


@lru_cache(maxsize=4)
def _cached(path: str, mtime_ns: int, size: int) -> Imatrix:
    return read_imatrix(path)


def importances(path: str) -> Mapping[str, np.ndarray]:
    """{tensor: importances} of an imatrix file, read once per file version (scheme option
    `imatrix=PATH` of the llama.cpp family reads through this)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FormatError(path, f"cannot read: {exc.strerror or exc}") from None
    return _cached(os.path.abspath(path), st.st_mtime_ns, st.st_size).entries


register_importance_reader(importances)
