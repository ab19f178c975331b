"""GGUF writer and export target: one GGUF v3 file with the plan's ggml type per tensor.

What each scheme becomes (`gguf_storage`):
- float32 / float16 / bfloat16: F32 / F16 / BF16; a kept tensor keeps its own dtype (F32,
  F16, BF16, F64, I8…I64; uint8/uint16/uint32/bool widen losslessly to I16/I32/I64/I8). A
  block-quantized input tensor the plan keeps as float32 is written as F32 of its decoded
  values (the bytes the preview counts).
- llama.cpp's block types (`q8_0`, `q4_k`, …, whatever ggml type a scheme is named after):
  stored natively, the scheme's bytes being ggml's blocks along each row — in the fallback
  type its family chose where rows do not fit the blocks (q4_k → q5_0, …, f16), as
  llama-quantize stores them.
- every other scheme (affine, int8, int4, kmeans): GGUF has no such type, so the values are
  *baked*: decoded, then stored as F16 (codes of ≤ 8 bits, which F16 holds to within its
  rounding) or F32 (wider codes, which F16 would blur). The preview applies the same two
  stages, so its error is the file's error; the note says so. Choose a block type (q8_0 is
  8.5 bits/weight) for a llama.cpp-sized file.

Layout as llama.cpp's gguf writer makes it: the header (see `layout.py`), padding to the
alignment, then every tensor in the model's order, each padded to the alignment (the order the
input had: llama.cpp and convert_hf_to_gguf keep the order they are given; llama-quantize
itself sorts by block number, which a file it wrote already has). The header's length does not
depend on the stored types, so it is reserved first and written last: the data streams straight
into the file. Predicted size (`quantized_bytes` plus `overhead_bytes`, which holds the header
and every padding) equals the written size. A 0-d tensor is stored with `ne = [1]` (llama.cpp
writes at least one dimension), so it reads back as shape (1,).

Beside OUT the export writes `OUT-stem.llama-quantize.txt`: the `llama-quantize` command that
gives the same per-tensor types from a GGUF input (see `quantize_args.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.target import Storage, Target
from inspector.formats._write_common import resolved_plan_json
from inspector.formats.atomic import atomic_file
from inspector.formats.gguf.header import parse_header
from inspector.formats.gguf.layout import (
    Entry,
    alignment_of,
    ggml_type_for,
    header_bytes,
    lookup,
    padded,
    stored_nbytes,
    stored_type,
)
from inspector.formats.gguf.quantize_args import args_path, llama_quantize_text

__all__ = ["GGUF", "gguf_storage", "write"]

_FLOAT16 = parse_scheme("float16")
_FLOAT32 = parse_scheme("float32")
_WIDEN = {"bool": "i1", "uint8": "<i2", "uint16": "<i4", "uint32": "<i8", "uint64": "<i8"}
_MAX_NAME = 63  # llama.cpp's GGML_MAX_NAME − 1


def gguf_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """How GGUF holds `scheme` (see the module docstring)."""
    if scheme.is_identity:
        return Storage(())
    if scheme.stores_values or lookup(scheme.name) is not None:
        return Storage((scheme,))
    into = _FLOAT16 if scheme.bits <= 8 else _FLOAT32
    kind = "F16" if into is _FLOAT16 else "F32"
    note = (
        f"{scheme.name} baked to {kind}: GGUF has no {scheme.family.id} type "
        "(llama.cpp's block types such as q8_0 or q4_k are stored natively)"
    )
    return Storage((scheme, into), note)


def _kept_bytes(q: QuantizedTensor) -> np.ndarray:
    arr = np.ascontiguousarray(q.original)
    wide = _WIDEN.get(q.info.dtype)
    if wide is not None:
        if q.info.dtype == "uint64" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise FormatError("gguf", "uint64 values beyond int64 (GGUF has no U64)", q.info.name)
        arr = arr.astype(wide)
    return arr.reshape(-1).view(np.uint8)


def _payload(q: QuantizedTensor) -> tuple[Entry, list[Any]]:
    """The tensor's entry and the buffers holding its stored bytes, in order."""
    t = stored_type(q.info, q.encoded.scheme if q.encoded is not None else None)
    views = [_kept_bytes(q)] if q.encoded is None else q.encoded.byte_views()
    entry = Entry(q.info, t, stored_nbytes(q.info, t))
    got = sum(v.nbytes if isinstance(v, np.ndarray) else len(v) for v in views)
    if got != entry.nbytes:
        raise FormatError(
            "gguf", f"{got} bytes for a {t.name} tensor of {entry.nbytes}", q.info.name
        )
    return entry, views


def _plan_json(model: Model, opts: Any) -> str:
    infos = [t.info for t in model if not t.info.optimizer]
    return resolved_plan_json((i.name, opts.plan.scheme_for(i).spec) for i in infos)


def write(model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: Any) -> list[Path]:
    """Write the GGUF file to `dest`: room for the header, the data as it streams, the header."""
    align = alignment_of(model)
    plan_json = _plan_json(model, opts)
    placeholder = [
        Entry(t.info, ggml_type_for(t.info, None), 0) for t in model if not t.info.optimizer
    ]
    reserved = len(header_bytes(model, placeholder, plan_json))
    entries: list[Entry] = []
    with open(dest, "wb") as fh:
        fh.seek(reserved)
        for q in stream:
            if q.info.optimizer:
                continue
            entry, views = _payload(q)
            for v in views:
                fh.write(memoryview(v).cast("B"))
            fh.write(bytes(padded(entry.nbytes, align) - entry.nbytes))
            entries.append(entry)
        header = header_bytes(model, entries, plan_json)
        if len(header) != reserved:
            raise FormatError(dest, f"header is {len(header)} bytes, {reserved} were reserved")
        fh.seek(0)
        fh.write(header)
    _notes(model, entries, opts)
    out = getattr(opts, "out", None)
    if out is not None and str(out) not in ("", "."):
        with atomic_file(args_path(Path(out))) as fh:
            fh.write(llama_quantize_text(model, entries, Path(out)).encode("utf-8"))
    return [dest]


def _notes(model: Model, entries: Sequence[Entry], opts: Any) -> None:
    notes = getattr(opts, "notes", None)
    if notes is None:
        return
    long_names = [e.info.name for e in entries if len(e.info.name.encode()) > _MAX_NAME]
    if long_names:
        notes.append(
            f"{len(long_names)} tensor names are longer than the 63 bytes llama.cpp accepts "
            f"(e.g. {long_names[0]}); gguf-py reads them"
        )
    if model.format != "gguf":
        notes.append(
            f"tensor names are the {model.format} names: llama.cpp runs a GGUF only with "
            "convert_hf_to_gguf.py's names and hyper-parameters"
        )
    if out := getattr(opts, "out", None):
        notes.append(f"llama-quantize arguments for this plan: {args_path(Path(out)).name}")


def _row_entry(model: Model, row: Any) -> Entry:
    info = model[row.name].info
    t = stored_type(info, None if row.skipped is not None else parse_scheme(row.stored))
    return Entry(info, t, stored_nbytes(info, t))


def gguf_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """The header as `write` emits it, then zeros for every padding and widening: with the rows'
    `quantized_bytes` they make the file's size exactly."""
    rows = [r for r in previews if not r.optimizer]
    entries = [_row_entry(model, r) for r in rows]
    pairs = ((r.name, r.scheme) for r in rows)
    header = header_bytes(model, entries, resolved_plan_json(pairs))
    align = alignment_of(model)
    extra = sum(
        padded(e.nbytes, align) - r.quantized_bytes for e, r in zip(entries, rows, strict=True)
    )
    return header + bytes(extra)


def gguf_tensor_bytes(model: Model, q: QuantizedTensor) -> bytes:
    """One tensor's bytes as the file holds them, padding included."""
    entry, views = _payload(q)
    data = b"".join(memoryview(v).cast("B").tobytes() for v in views)
    return data + bytes(padded(entry.nbytes, alignment_of(model)) - entry.nbytes)


def gguf_archive(
    overhead: bytes, stored_total: int, chunks: Iterable[bytes | memoryview]
) -> Iterator[bytes | memoryview]:
    """The file's bytes in order: the header, then each tensor with its padding (the zeros
    that `gguf_overhead` adds after the header are the paddings, already in the chunks)."""
    header = parse_header(overhead, "gguf", check_data=False)
    yield memoryview(overhead)[: header.data_offset]
    yield from chunks


GGUF = Target("gguf", gguf_storage, gguf_overhead, gguf_tensor_bytes, gguf_archive)
