"""ONNX writer: weight-only quantization in front of the original consumers, in the model's opset.

Each quantized tensor is put back where the reader found it (`OnnxSource`: initializer,
Constant node, subgraph, DequantizeLinear/Cast-stored weight): its value name is now produced by
new nodes, so consumers, graph inputs/outputs and every other node are unchanged. Only weights
are quantized: tensors the reader marks as not weights (`TensorInfo.kept`) stay as they are
unless a per-tensor override may and does name them (see roles.py and `Plan.scheme_for`).
Storage per scheme (`ONNX_TARGET`), decoded as decode.py's table says:
- int8: int8 codes + float32 scales (per channel, or per tensor for 0-d/1-d), no zero point;
- int4: int4 codes + float16 scales, blocks of `group` along the input axis;
- uint8/affine8, affine4, uint16/affine16: codes + float32 scale + zero point, then `Add` of
  the float32 offset `min + zp·scale` (0 when 0 lies in the range);
- float16/bfloat16: the initializer in that dtype + Cast to the tensor's dtype (exact);
- other affineN, kmeansN: baked to uint8 (N ≤ 8) or uint16, reported as a note.
The model's opset is never changed: below the opset a native operator needs, the export decodes
with older operators (decode.py), and says so in the export's notes. Models importing an opset
below 7 (which ONNX Runtime does not run) are refused. Tensors a plan keeps as float32 that were
stored quantized are written as plain float32 (what the preview counts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Encoded, Scheme, parse_scheme
from inspector.core.target import Storage, Target
from inspector.formats._write_common import resolved_plan_json
from inspector.formats.onnx.decode import NATIVE_AFFINE, Decoder, np_dtype
from inspector.formats.onnx.edit import NameAllocator, apply_replacements
from inspector.formats.onnx.proto import iter_graphs, materialize_external, require_onnx
from inspector.formats.targets import register_target

__all__ = ["MIN_OPSET", "ONNX_TARGET", "PLAN_PROP", "model_opset", "onnx_storage", "write"]

PLAN_PROP = "quant_inspector_plan"
MIN_OPSET = 7
_MAX_PROTO = 2**31 - 1


def onnx_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """How ONNX stores `scheme`: natively when DequantizeLinear/Cast (or, below their opset,
    Cast/Mul/Add) express it, else baked into uint8/uint16 codes."""
    if scheme.is_identity:
        return Storage(())
    if scheme.family in ("float", "int8", "int4") or scheme.name in NATIVE_AFFINE:
        return Storage((scheme,))
    into = "uint8" if scheme.bits <= 8 else "uint16"
    why = "a palette" if scheme.family == "kmeans" else f"{scheme.bits}-bit codes"
    note = f"{scheme.name} baked to {into}: ONNX DequantizeLinear has no {why}"
    return Storage((scheme, parse_scheme(into)), note)


def model_opset(proto: Any) -> int:
    """The default-domain opset a ModelProto imports (1 when it imports none)."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)


def build_proto(
    model: Model,
    items: Sequence[tuple[Any, TensorInfo, Encoded | None, np.ndarray]],
    plan_json: str,
    inline: bool = True,
    notes: list[str] | None = None,
) -> Any:
    """The exported ModelProto: `items` are (source, info, stored encoding or None, values) of
    the tensors to replace; `inline` reads external data into the proto (False: placeholders).
    `notes` receives one line per decoding that needed the opset fallback."""
    onnx = require_onnx()
    if model.format != "onnx" or "onnx_proto" not in model.metadata:
        raise InspectorError(
            f"{model.path}: ONNX export needs an ONNX model (the graph comes from the input)"
        )
    proto = onnx.ModelProto()
    proto.CopyFrom(model.metadata["onnx_proto"])
    if inline:
        materialize_external(proto, model.path.parent, model.path)
    else:
        _placeholders(proto)
    decoder = _decoder(proto, items, model.path)
    reps = [decoder.replacement(src, info, enc, values) for src, info, enc, values in items]
    apply_replacements(proto, reps)
    proto.graph.initializer.extend(decoder.shared)
    if reps:
        proto.ir_version = max(proto.ir_version, 10 if decoder.packed_4bit else 4)
    if notes is not None:
        opset = model_opset(proto)
        notes.extend(f"ONNX opset {opset}: {what}" for what in sorted(decoder.fallbacks))
    props = [p for p in proto.metadata_props if p.key != PLAN_PROP]
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    proto.metadata_props.add(key=PLAN_PROP, value=plan_json)
    return proto


def _decoder(proto: Any, items: Sequence[Any], source: Path) -> Decoder:
    """A Decoder for the model's opset; a model below `MIN_OPSET` is refused when something
    would be quantized (ONNX Runtime runs opset 7 and later)."""
    opset = model_opset(proto)
    if opset < MIN_OPSET and any(enc is not None for _, _, enc, _ in items):
        raise FormatError(
            source,
            f"the model imports ONNX opset {opset}; a quantized export needs opset "
            f"{MIN_OPSET} or later (ONNX Runtime's minimum): convert it first, e.g. with "
            "onnx.version_converter.convert_version(model, 13)",
        )
    return Decoder(NameAllocator(proto), opset)


def _placeholders(proto: Any) -> None:
    onnx = require_onnx()
    for _, g in iter_graphs(proto.graph):
        tensors = [
            *g.initializer,
            *(a.t for n in g.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR),
        ]
        for t in tensors:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                info = {e.key: e.value for e in t.external_data}
                t.raw_data = bytes(int(info.get("length", 0)))
                del t.external_data[:]
                t.data_location = onnx.TensorProto.DEFAULT


def _item(
    model: Model, q: QuantizedTensor
) -> tuple[Any, TensorInfo, Encoded | None, np.ndarray] | None:
    src = model.metadata["onnx_sources"][q.info.name]
    if q.encoded is None and src.kind in ("initializer", "constant"):
        return None
    return src, q.info, q.encoded, q.decoded


def write(model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: Any) -> list[Path]:
    """Write the quantized ONNX model to `dest` (a temporary path the caller renames)."""
    onnx = require_onnx()
    pairs: list[tuple[str, str]] = []
    items = []
    for q in stream:
        pairs.append((q.info.name, q.scheme.spec))
        item = _item(model, q)
        if item is not None:
            items.append(item)
    proto = build_proto(model, items, resolved_plan_json(pairs), notes=getattr(opts, "notes", None))
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise FormatError(dest, f"the exported graph fails the ONNX checker: {exc}") from None
    if proto.ByteSize() > _MAX_PROTO:
        raise FormatError(
            dest, "export larger than 2 GiB: ONNX external-data export is not supported yet"
        )
    with open(dest, "wb") as fh:
        fh.write(proto.SerializeToString())
    return [Path(dest)]


def _dry_encoded(info: TensorInfo, spec: str) -> Encoded | None:
    """A zero-valued encoding with the exact shapes the stored spec would have."""
    from inspector.core.symmetric import as_rows

    scheme = parse_scheme(spec)
    if scheme.is_identity:
        return None
    axis = scheme.resolve_axis(info.shape, info.channel_axis)
    fam = scheme.family
    codes = np.zeros(info.shape, np_dtype(scheme.name) if fam == "float" else np.uint8)
    params: dict[str, Any] = {"min": 0.0, "scale": 1.0}
    if fam in ("int8", "int4"):
        rows = as_rows(codes, axis)
        channels = rows.shape[1]
        if fam == "int8":
            params = {"scales": np.zeros(channels, np.float32), "axis": axis}
        else:
            groups = -(-rows.shape[0] // scheme.group)
            params = {
                "scales": np.zeros((channels, groups), np.float16),
                "axis": axis,
                "group": scheme.group,
            }
    return Encoded(scheme, info.shape, codes, params)


def onnx_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """Graph bytes the export adds around the counted tensor bytes: the export is built with
    zero-valued payloads of the exact sizes, and its size minus the previews' `quantized_bytes`
    is the overhead (the serialized graph without payloads, cut or zero-padded to that length)."""
    if model.format != "onnx" or "onnx_sources" not in model.metadata:
        return b""
    items = []
    for row in previews:
        info = model[row.name].info
        enc = None if row.skipped is not None else _dry_encoded(info, row.stored)
        src = model.metadata["onnx_sources"][row.name]
        if enc is None and src.kind in ("initializer", "constant"):
            continue
        items.append((src, info, enc, np.zeros(info.shape, np.float32)))
    proto = build_proto(
        model, items, resolved_plan_json((r.name, r.scheme) for r in previews), inline=False
    )
    size = proto.ByteSize() - sum(r.quantized_bytes for r in previews)
    for _, g in iter_graphs(proto.graph):
        for t in g.initializer:
            t.ClearField("raw_data")
    stripped = proto.SerializeToString()
    return stripped[: max(size, 0)].ljust(max(size, 0), b"\0")


ONNX_TARGET = Target("onnx", onnx_storage, onnx_overhead)
register_target(ONNX_TARGET)
