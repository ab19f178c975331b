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
`palette[q]` — `load_dequantized` does it. `__metadata__` holds `format` ("pt" when every
quantized tensor is a float array under its own name — an ordinary state dict that transformers
loads — else "quant_inspector"), `quant_inspector_plan` (the resolved plan JSON) and
`quant_inspector_tensors` (JSON: name → stored spec, shape, axis) so a file decodes without this
tool's help. The bytes per tensor are exactly the scheme's
`Encoded.to_bytes()` (the preview's `quantized_bytes`); the header (plus its 8-byte length) is
the preview's overhead, built from the preview rows.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.target import Target, native_storage
from inspector.formats._write_common import resolved_plan_json
from inspector.formats.base import ExportOptions

__all__ = [
    "SAFETENSORS",
    "components",
    "header_bytes",
    "load_dequantized",
    "payload",
    "stored_scheme",
    "write",
]

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
    """(entry name, dtype code, shape, bytes) of every array stored for one tensor, in order:
    the scheme's stored arrays (`Scheme.stored_arrays`), codes under the tensor's name and each
    parameter array under `<name>.<role>`. `scheme` None means the tensor is stored as it is."""
    name = info.name
    if scheme is None:
        return [(name, _code(info.dtype, name), info.shape, info.nbytes)]
    return [
        (_key(name, a.role), _code(a.dtype, name), a.shape, a.nbytes)
        for a in scheme.stored_arrays(info)
    ]


def _key(name: str, role: str) -> str:
    return name if role == "codes" else f"{name}.{role}"


def _code(dtype: str, name: str) -> str:
    code = _DTYPE_CODE.get(dtype)
    if code is None:
        raise FormatError("safetensors", f"dtype {dtype} cannot be stored", name)
    return code


def _tensor_record(info: TensorInfo, scheme: Scheme) -> dict[str, Any]:
    return {
        "scheme": scheme.spec,
        "shape": list(info.shape),
        "axis": scheme.resolve_axis(info.shape, info.channel_axis),
    }


def _container_format(entries: Sequence[tuple[TensorInfo, Scheme | None]]) -> str:
    """`__metadata__["format"]`: "pt" when every tensor is one float array under its own name,
    as Hugging Face checkpoints are (transformers refuses any other value, and such a file is an
    ordinary state dict); "quant_inspector" when codes and parameter arrays need our decoding."""
    for info, scheme in entries:
        if scheme is None:  # stored as the input holds it (integer buffers too)
            continue
        for key, code, _shape, _nbytes in components(info, scheme):
            if key != info.name or code not in ("F32", "F16", "BF16"):
                return "quant_inspector"
    return "pt"


def header_bytes(
    entries: Sequence[tuple[TensorInfo, Scheme | None]], pairs: Sequence[tuple[str, str]]
) -> bytes:
    """The 8-byte length and JSON header for `entries` (buffer order), recording `pairs` (tensor,
    requested spec) as the plan and each quantized tensor's scheme, shape and axis."""
    header: dict[str, Any] = {}
    records = {i.name: _tensor_record(i, s) for i, s in entries if s is not None}
    header["__metadata__"] = {
        "format": _container_format(entries),
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


def stored_scheme(q: QuantizedTensor, dequantized: bool) -> Scheme | None:
    """The scheme whose codes the file stores for `q` (None: its values as they are)."""
    if q.encoded is None:
        return None
    if dequantized and not q.encoded.scheme.stores_values:
        return parse_scheme("float32")
    return q.encoded.scheme


def payload(q: QuantizedTensor, scheme: Scheme | None) -> bytes:
    """The bytes stored for `q` under `stored_scheme`, in `components` order."""
    if scheme is None:
        return np.ascontiguousarray(q.original).tobytes()
    if q.encoded is not None and scheme is q.encoded.scheme:
        return q.encoded.to_bytes()
    return np.ascontiguousarray(q.decoded, dtype="<f4").tobytes()


def write(
    model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: ExportOptions
) -> list[Path]:
    """Write the file to `dest`. Tensors' bytes are spooled to a sibling temporary file
    while the header (which needs every size) is built, then the two are joined. With
    `opts.max_shard_bytes` set, `dest` is a folder that gets the sharded layout instead."""
    if opts.max_shard_bytes > 0:
        from inspector.formats.safetensors.sharded_writer import write_sharded

        return write_sharded(model, stream, dest, opts)
    entries: list[tuple[TensorInfo, Scheme | None]] = []
    pairs: list[tuple[str, str]] = []
    body = dest.with_name(dest.name + ".body")
    try:
        with open(body, "wb") as fh:
            for q in stream:
                if q.info.optimizer:
                    continue
                scheme = stored_scheme(q, opts.dequantized)
                data = payload(q, scheme)
                expected = sum(c[3] for c in components(q.info, scheme))
                if len(data) != expected:
                    raise FormatError(
                        dest, f"{len(data)} bytes, layout says {expected}", q.info.name
                    )
                fh.write(data)
                entries.append((q.info, scheme))
                pairs.append((q.info.name, q.scheme.spec))
        with open(dest, "wb") as out, open(body, "rb") as fh:
            out.write(header_bytes(entries, pairs))
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
        if row.optimizer:
            continue
        info = model[row.name].info
        stored = None if row.skipped is not None else parse_scheme(row.stored)
        entries.append((info, stored))
        pairs.append((row.name, row.scheme))
    return header_bytes(entries, pairs)


def load_dequantized(path: str | Path) -> dict[str, np.ndarray]:
    """Decode a file this writer produced into float32 values per original tensor name."""
    from inspector.formats.safetensors.reader import read_safetensors

    with read_safetensors(path) as m:
        meta = m.metadata.get("safetensors_metadata", {})
        records = json.loads(meta.get("quant_inspector_tensors", "{}"))
        layouts = {name: _layout(name, rec) for name, rec in records.items()}
        params_of = {k for keys in layouts.values() for k in keys[1:]}
        out: dict[str, np.ndarray] = {}
        for t in m:
            if t.name in params_of:
                continue
            if t.name not in records:
                out[t.name] = np.array(t.load())
                continue
            scheme, shape, axis = _record(records[t.name])
            arrays = [np.asarray(m[key].load()) for key in layouts[t.name]]
            enc = scheme.family.from_arrays(scheme, shape, axis, arrays)
            out[t.name] = scheme.decode(enc)
        return out


def _record(rec: dict[str, Any]) -> tuple[Scheme, tuple[int, ...], int | None]:
    return parse_scheme(rec["scheme"]), tuple(rec["shape"]), rec["axis"]


def _layout(name: str, rec: dict[str, Any]) -> list[str]:
    """The entry names of a recorded tensor's stored arrays, codes first."""
    scheme, shape, axis = _record(rec)
    return [_key(name, a.role) for a in scheme.family.stored_arrays(scheme, shape, axis)]


SAFETENSORS = Target("safetensors", native_storage, safetensors_overhead)
