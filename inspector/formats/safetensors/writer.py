"""safetensors writer: floats natively, integer schemes as codes plus parameter tensors.

Naming convention (one entry per stored array; buffer order = model order, codes first):

| scheme | `<name>` (codes) | parameters |
|---|---|---|
| float32/float16/bfloat16, kept | F32/F16/BF16 (own dtype), tensor shape | — |
| uint8 / uint16 | U8 / U16, tensor shape | `<name>.min`, `<name>.scale`: F64 `[]` |
| affineN, N ∉ {8, 16} | U8 `[bytes]`: N-bit codes packed little-endian | as uint8 |
| int8 | I8, tensor shape | `<name>.scale`: F32 `[C]` (C channels along `axis`) |
| int4 | U8 `[ceil(n/2)]`: nibbles q+8, first code low | `<name>.scale`: F16 `[C·G]` |
| kmeansN | U8, tensor shape (N = 8) or packed `[bytes]` | `<name>.palette`: F32 `[2^N]` |

Decode: affine `float32(q·scale + min)` in float64 (zero point = −min/scale); int8/int4
`q·scale[c]` (int4 groups of `group` values along the input axis, channel-major); kmeans
`palette[q]` — `load_dequantized` does it. `__metadata__` holds `quant_inspector_plan` (the
resolved plan JSON) and `quant_inspector_tensors` (JSON: name → stored spec, shape, axis) so
a file decodes without this tool's help. The bytes per tensor are exactly the scheme's
`Encoded.to_bytes()` (the preview's `quantized_bytes`); the header (plus its 8-byte length) is
the preview's overhead, built from the preview rows.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core import codecs
from inspector.core.bitpack import unpack_codes
from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Encoded, Scheme, parse_scheme
from inspector.core.target import Target, native_storage
from inspector.formats._write_common import PLAN_KEY, resolved_plan_json
from inspector.formats.targets import register_target

__all__ = ["SAFETENSORS", "components", "load_dequantized", "write"]

_DTYPE_CODE = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
}
Component = tuple[str, str, tuple[int, ...], int]


def components(info: TensorInfo, scheme: Scheme | None) -> list[Component]:
    """(entry name, dtype code, shape, bytes) of every array stored for one tensor, in order.

    `scheme` None means the tensor is stored as it is, in its own dtype.
    """
    name, shape, n = info.name, info.shape, info.size
    if scheme is None:
        code = _DTYPE_CODE.get(info.dtype)
        if code is None:
            raise FormatError("safetensors", f"dtype {info.dtype} cannot be stored", name)
        return [(name, code, shape, info.nbytes)]
    fam, bits = scheme.family, scheme.bits
    if fam == "float":
        return [(name, _DTYPE_CODE[scheme.name], shape, n * bits // 8)]
    packed = codecs.codes_nbytes(scheme, n)
    axis = scheme.resolve_axis(shape, info.channel_axis)
    pbytes = codecs.params_nbytes(scheme, shape, axis)
    if fam == "int8":
        codes = (name, "I8", shape, n)
    elif fam == "int4" or bits not in (8, 16):
        codes = (name, "U8", (packed,), packed)
    else:
        codes = (name, "U8" if bits == 8 else "U16", shape, packed)
    if fam == "affine":
        return [codes, (f"{name}.min", "F64", (), 8), (f"{name}.scale", "F64", (), 8)]
    if fam == "int8":
        return [codes, (f"{name}.scale", "F32", (pbytes // 4,), pbytes)]
    if fam == "int4":
        return [codes, (f"{name}.scale", "F16", (pbytes // 2,), pbytes)]
    return [codes, (f"{name}.palette", "F32", (pbytes // 4,), pbytes)]


def _tensor_record(info: TensorInfo, scheme: Scheme) -> dict[str, Any]:
    return {
        "scheme": scheme.spec,
        "shape": list(info.shape),
        "axis": scheme.resolve_axis(info.shape, info.channel_axis),
    }


def _header(
    entries: Sequence[tuple[TensorInfo, Scheme | None]], pairs: Sequence[tuple[str, str]]
) -> bytes:
    header: dict[str, Any] = {}
    records = {i.name: _tensor_record(i, s) for i, s in entries if s is not None}
    header["__metadata__"] = {
        "format": "quant_inspector",
        "quant_inspector_plan": resolved_plan_json(pairs),
        "quant_inspector_tensors": json.dumps(records, separators=(",", ":")),
    }
    offset = 0
    for info, scheme in entries:
        for key, code, shape, nbytes in components(info, scheme):
            if key in header:
                raise FormatError("safetensors", "two stored arrays get the same name", key)
            header[key] = {
                "dtype": code,
                "shape": list(shape),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


def _stored_scheme(q: QuantizedTensor, dequantized: bool) -> Scheme | None:
    if q.encoded is None:
        return None
    if dequantized and q.encoded.scheme.family != "float":
        return parse_scheme("float32")
    return q.encoded.scheme


def _payload(q: QuantizedTensor, scheme: Scheme | None) -> bytes:
    if scheme is None:
        return np.ascontiguousarray(q.original).tobytes()
    if q.encoded is not None and scheme is q.encoded.scheme:
        return q.encoded.to_bytes()
    return np.ascontiguousarray(q.decoded, dtype="<f4").tobytes()


def write(model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: Any) -> list[Path]:
    """Write the file to `dest`. Tensors' bytes are spooled to a sibling temporary file
    while the header (which needs every size) is built, then the two are joined."""
    entries: list[tuple[TensorInfo, Scheme | None]] = []
    pairs: list[tuple[str, str]] = []
    body = dest.with_name(dest.name + ".body")
    try:
        with open(body, "wb") as fh:
            for q in stream:
                if q.info.optimizer or q.info.name == PLAN_KEY:
                    continue
                scheme = _stored_scheme(q, getattr(opts, "dequantized", False))
                data = _payload(q, scheme)
                expected = sum(c[3] for c in components(q.info, scheme))
                if len(data) != expected:
                    raise FormatError(
                        dest, f"{len(data)} bytes, layout says {expected}", q.info.name
                    )
                fh.write(data)
                entries.append((q.info, scheme))
                pairs.append((q.info.name, q.scheme.spec))
        with open(dest, "wb") as out, open(body, "rb") as fh:
            out.write(_header(entries, pairs))
            while chunk := fh.read(16 << 20):
                out.write(chunk)
    finally:
        body.unlink(missing_ok=True)
    return [dest]


def safetensors_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """The 8-byte length and JSON header exactly as `write` emits them for these rows."""
    entries: list[tuple[TensorInfo, Scheme | None]] = []
    pairs = []
    for row in previews:
        if row.optimizer or row.name == PLAN_KEY:
            continue
        info = model[row.name].info
        stored = None if row.skipped is not None else parse_scheme(row.stored)
        entries.append((info, stored))
        pairs.append((row.name, row.scheme))
    return _header(entries, pairs)


def load_dequantized(path: str | Path) -> dict[str, np.ndarray]:
    """Decode a file this writer produced into float32 values per original tensor name."""
    from inspector.formats.safetensors.reader import read_safetensors

    with read_safetensors(path) as m:
        meta = m.metadata.get("safetensors_metadata", {})
        records = json.loads(meta.get("quant_inspector_tensors", "{}"))
        params_of = {c for r in records for c in (f"{r}.min", f"{r}.scale", f"{r}.palette")}
        out: dict[str, np.ndarray] = {}
        for t in m:
            if t.name in params_of:
                continue
            rec = records.get(t.name)
            if rec is None:
                out[t.name] = np.array(t.load())
                continue
            out[t.name] = _decode(m, t.name, rec)
        return out


def _decode(m: Model, name: str, rec: dict[str, Any]) -> np.ndarray:
    scheme = parse_scheme(rec["scheme"])
    shape = tuple(rec["shape"])
    n = math.prod(shape)
    raw = np.asarray(m[name].load())
    fam = scheme.family
    params: dict[str, Any] = {}
    if fam == "float":
        return raw.astype(np.float32)
    if fam == "affine":
        params = {"min": float(m[f"{name}.min"].load()), "scale": float(m[f"{name}.scale"].load())}
    elif fam in ("int8", "int4"):
        params = {"scales": np.asarray(m[f"{name}.scale"].load()), "axis": rec["axis"]}
        if fam == "int4":
            params["group"] = scheme.group
            params["scales"] = params["scales"].reshape(
                _int4_scale_shape(shape, rec["axis"], scheme.group or 32)
            )
    else:
        params = {"palette": np.asarray(m[f"{name}.palette"].load())}
    if fam == "int8":
        codes = raw.reshape(shape)
    elif fam == "int4":
        codes = unpack_codes(raw.tobytes(), 4, n).astype(np.int8) - 8
    elif scheme.bits in (8, 16):
        codes = raw.reshape(shape)
    else:
        codes = unpack_codes(raw.tobytes(), scheme.bits, n)
    enc = Encoded(scheme, shape, np.asarray(codes).reshape(shape), params)
    return scheme.decode(enc)


def _int4_scale_shape(shape: tuple[int, ...], axis: int | None, group: int) -> tuple[int, int]:
    channels = shape[axis] if axis is not None else 1
    rows = math.prod(shape) // channels if channels else 0
    return channels, -(-rows // group) if rows else 0


SAFETENSORS = Target("safetensors", native_storage, safetensors_overhead)
register_target(SAFETENSORS)
