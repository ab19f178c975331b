"""What a GGUF export holds, decided from tensor infos and stored scheme names alone.

Both the writer and the preview's size prediction use these functions, so the header the
preview counts is byte for byte the header the writer emits (DESIGN §7 rule 7):
- `ggml_type_for` maps a stored scheme (or a kept tensor's dtype) to its ggml type;
- `header_bytes` encodes the key/values and tensor infos, padded to the alignment;
- `file_type` is `general.file_type` as llama-quantize sets it for the plan's main type.

Key/values: a GGUF input's fields are copied in order as they are, except `split.*` (the
output is one file) and `general.quantization_version` / `general.file_type`, which are
appended (in that order, as llama-quantize does); then `quant_inspector.plan` (the resolved
plan JSON). Other inputs get `general.name` (the file's stem) before those.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inspector.core.errors import FormatError
from inspector.core.ggml.types import GGMLType, ggml_type, row_nbytes
from inspector.core.model import Model, TensorInfo
from inspector.core.schemes import Scheme
from inspector.formats.gguf.header import DEFAULT_ALIGNMENT, MAGIC
from inspector.formats.gguf.reader import field_bytes, is_split_key

__all__ = [
    "FTYPES",
    "PLAN_KEY",
    "QUANTIZATION_VERSION",
    "Entry",
    "alignment_of",
    "file_type",
    "ggml_type_for",
    "header_bytes",
    "lookup",
    "main_type",
    "padded",
    "stored_nbytes",
    "stored_type",
]

QUANTIZATION_VERSION = 2
PLAN_KEY = "quant_inspector.plan"
# ggml type → llama_ftype, as `llama-quantize IN OUT TYPE` records it (Q4_K is Q4_K_M's alias)
FTYPES: dict[str, int] = {
    "f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10,
    "q3_k": 12, "q4_k": 15, "q5_k": 17, "q6_k": 18, "iq2_xxs": 19, "iq2_xs": 20,
    "iq3_xxs": 23, "iq1_s": 24, "iq4_nl": 25, "iq3_s": 26, "iq2_s": 29, "iq4_xs": 30,
    "iq1_m": 31, "bf16": 32, "tq1_0": 36, "tq2_0": 37, "mxfp4": 38, "nvfp4": 39, "q1_0": 40,
    "q2_0": 41,
}  # fmt: skip
_BY_DTYPE = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
    "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "bool": "i8", "uint8": "i16", "uint16": "i32", "uint32": "i64", "uint64": "i64",
}  # fmt: skip
_FLOAT_SCHEMES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}
_U32, _STRING = 4, 8


@dataclass(frozen=True)
class Entry:
    """One tensor of the output: its info, ggml type and stored bytes (without padding)."""

    info: TensorInfo
    ggml: GGMLType
    nbytes: int


def ggml_type_for(info: TensorInfo, stored: str | None) -> GGMLType:
    """The ggml type holding `info` stored as scheme `stored` (None: kept in its own dtype).

    Unsigned and bool tensors, which GGUF has no type for, widen losslessly to the next
    signed integer type (uint64 beyond int64 is refused when written).
    """
    name = _BY_DTYPE.get(info.dtype) if stored is None else _FLOAT_SCHEMES.get(stored, stored)
    t = lookup(name) if name else None
    if t is None:
        what = f"scheme {stored}" if stored else f"dtype {info.dtype}"
        raise FormatError("gguf", f"GGUF has no tensor type for {what}", info.name)
    ne0 = info.shape[-1] if info.shape else 1
    if ne0 % t.block_size:
        raise FormatError(
            "gguf",
            f"rows of {ne0} values are not whole {t.name} blocks of {t.block_size}",
            info.name,
        )
    return t


def stored_type(info: TensorInfo, scheme: Scheme | None) -> GGMLType:
    """The ggml type a tensor stored as `scheme` (None: kept as it is) takes in the file. A
    llama.cpp scheme whose rows do not fit its blocks stores its fallback type (q4_k → q5_0,
    …), which its family names as the `type` parameter."""
    if scheme is None:
        return ggml_type_for(info, None)
    name = scheme.name
    if lookup(name) is not None:
        name = str(scheme.family.dry_params(scheme, info.shape, None).get("type", name))
    return ggml_type_for(info, name)


def lookup(name: str) -> GGMLType | None:
    """The ggml type named `name` (any case), None when ggml has none."""
    try:
        return ggml_type(name)
    except ValueError:
        return None


def stored_nbytes(info: TensorInfo, t: GGMLType) -> int:
    """Bytes of `info`'s values in type `t` (rows of whole blocks)."""
    ne0 = info.shape[-1] if info.shape else 1
    return row_nbytes(t, ne0) * math.prod(info.shape[:-1])


def alignment_of(model: Model) -> int:
    """The data alignment: the input GGUF's `general.alignment`, else GGUF's default 32."""
    if model.format != "gguf":
        return DEFAULT_ALIGNMENT
    return int(model.metadata.get("gguf_alignment", DEFAULT_ALIGNMENT))


def padded(n: int, alignment: int) -> int:
    return n + (-n % alignment)


def main_type(entries: Sequence[Entry]) -> GGMLType | None:
    """The type holding the most weights among matrices (n_dims ≥ 2), preferring block types:
    llama-quantize's `TYPE` for the plan (its `--tensor-type` overrides need a block type)."""
    counts: dict[str, tuple[int, GGMLType]] = {}
    for e in entries:
        if len(e.info.shape) >= 2 and e.ggml.name in FTYPES:
            n, _ = counts.get(e.ggml.name, (0, e.ggml))
            counts[e.ggml.name] = (n + e.info.size, e.ggml)
    if not counts:
        return None
    return max(counts.values(), key=lambda c: (c[1].quantized, c[0]))[1]


def file_type(entries: Sequence[Entry]) -> int:
    t = main_type(entries)
    return FTYPES[t.name] if t is not None else FTYPES["f32"]


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _kv_u32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<II", _U32, value)


def _kv_str(key: str, value: str) -> bytes:
    return _string(key) + struct.pack("<I", _STRING) + _string(value)


_APPENDED = ("general.quantization_version", "general.file_type", PLAN_KEY)


def _fields(model: Model, entries: Sequence[Entry], plan_json: str) -> list[bytes]:
    out: list[bytes] = []
    if model.format == "gguf":
        for f in model.metadata["gguf_fields"]:
            if not is_split_key(f.key) and f.key not in _APPENDED:
                out.append(field_bytes(model, f))
    else:
        out.append(_kv_str("general.name", model.path.stem))
    out.append(_kv_u32("general.quantization_version", QUANTIZATION_VERSION))
    out.append(_kv_u32("general.file_type", file_type(entries)))
    out.append(_kv_str(PLAN_KEY, plan_json))
    return out


def _tensor_info(e: Entry, offset: int) -> bytes:
    ne = tuple(reversed(e.info.shape)) or (1,)
    head = _string(e.info.name) + struct.pack("<I", len(ne))
    return head + struct.pack(f"<{len(ne)}QIQ", *ne, e.ggml.id, offset)


def header_bytes(model: Model, entries: Sequence[Entry], plan_json: str) -> bytes:
    """Magic, version 3, counts, key/values and tensor infos, padded to the alignment."""
    align = alignment_of(model)
    fields = _fields(model, entries, plan_json)
    parts: list[Any] = [MAGIC, struct.pack("<IQQ", 3, len(entries), len(fields)), *fields]
    offset = 0
    for e in entries:
        parts.append(_tensor_info(e, offset))
        offset += padded(e.nbytes, align)
    head = b"".join(parts)
    return head + bytes(-len(head) % align)
