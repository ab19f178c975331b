"""ONNX writer: weight-only quantization as DequantizeLinear in front of the original consumers.

Each quantized tensor is put back where the reader found it (`OnnxSource`): its value name is
now produced by new nodes, so consumers, graph inputs/outputs and every other node are unchanged.
Storage per scheme (`ONNX_TARGET`):
- int8: int8 codes + float32 scales (per axis, opset ≥ 13; per tensor, ≥ 10), no zero point;
- int4: int4 codes + float16 scales → Cast to float32 → DequantizeLinear with `block_size`
  (opset ≥ 21) on the codes laid out `(C, M)` (axis 0) or `(M, C)`, then Reshape/Transpose
  back — the exact bytes and values of the int4 scheme;
- uint8/affine8, affine4 (uint4, ≥ 21), uint16/affine16 (≥ 21): codes + float32 scale + zero
  point, then `Add` of the float32 offset `min + zp·scale` (0 when 0 lies in the range): values
  equal the preview's float64 decode to float32 rounding (≤ 1 ulp);
- float16/bfloat16: the initializer in that dtype + Cast to the tensor's dtype (exact);
- other affineN, kmeansN: baked to uint8 (N ≤ 8) or uint16, reported as a note.
When a scheme needs a newer opset than the model's, the whole model is converted with
`onnx.version_converter` (and the IR version raised to 10 for opset ≥ 21); tensors a plan keeps
as float32 that were stored quantized are written as plain float32 (what the preview counts).
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
from inspector.core.schemes.affine import AFFINE
from inspector.core.schemes.floats import FLOATS
from inspector.core.schemes.symmetric import SYMMETRIC
from inspector.core.target import Storage, Target
from inspector.formats._write_common import resolved_plan_json
from inspector.formats.base import ExportOptions
from inspector.formats.onnx.edit import NameAllocator, Replacement, apply_replacements
from inspector.formats.onnx.proto import iter_graphs, materialize_external, require_onnx

__all__ = ["ONNX_TARGET", "PLAN_PROP", "onnx_storage", "required_opset", "write"]

PLAN_PROP = "quant_inspector_plan"
_AFFINE_BITS = (4, 8, 16)
_CODE_TYPES = {4: "UINT4", 8: "UINT8", 16: "UINT16"}
_MAX_PROTO = 2**31 - 1


def _form(scheme: Scheme) -> str | None:
    """How ONNX expresses `scheme` natively — "cast" (a float initializer + Cast), "int8"
    (per-channel DequantizeLinear), "int4" (blocked DequantizeLinear), "affine" (codes, scale,
    zero point + Add) — or None when it must be baked. The one place families map to ONNX."""
    family = scheme.family
    if family is FLOATS:
        return "cast"
    if family is SYMMETRIC:
        return "int8" if scheme.bits == 8 else "int4"
    if family is AFFINE and scheme.bits in _AFFINE_BITS:
        return "affine"
    return None


def onnx_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """How ONNX stores `scheme`: natively when DequantizeLinear/Cast express it, else baked.
    Schemes stored with opset-21 operators say so: the export raises a lower opset."""
    if scheme.is_identity:
        return Storage(())
    if _form(scheme) is not None:
        return Storage((scheme,), _opset_note(scheme))
    into = "uint8" if scheme.bits <= 8 else "uint16"
    why = f"{scheme.bits}-bit codes" if scheme.family is AFFINE else f"{scheme.name} layout"
    note = f"{scheme.name} baked to {into}: ONNX DequantizeLinear has no {why}"
    return Storage((scheme, parse_scheme(into)), note)


def _opset_note(scheme: Scheme) -> str:
    if required_opset(scheme, None) < 21:
        return ""
    what = "int4 blocks" if _form(scheme) == "int4" else f"uint{scheme.bits} codes"
    return (
        f"{scheme.name} needs ONNX opset 21 (DequantizeLinear of {what}): "
        "the export raises a lower model opset to 21"
    )


def model_opset(proto: Any) -> int:
    """The default-domain opset a ModelProto imports (1 when it imports none)."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)


def required_opset(scheme: Scheme, axis: int | None) -> int:
    """Lowest default-domain opset storing `scheme` (stored stage) natively."""
    form = _form(scheme)
    if form == "int4" or (form == "affine" and scheme.bits != 8):
        return 21
    if form == "int8" and axis is not None:
        return 13
    if form == "cast" and scheme.exact_dtype == "bfloat16":
        return 13
    return 10 if form in ("int8", "affine") else 1


def _proto_type(dtype: str) -> int:
    onnx = require_onnx()
    if dtype == "bfloat16":
        return onnx.TensorProto.BFLOAT16
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class _Builder:
    """Proto pieces producing one tensor's value name from its stored encoding."""

    def __init__(self, names: NameAllocator) -> None:
        self.onnx = require_onnx()
        self.names = names

    def init(self, base: str, arr: np.ndarray, proto_type: int | None = None) -> Any:
        name = self.names.fresh(base)
        if proto_type is None:
            return self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name)
        flat = np.ascontiguousarray(arr, dtype=np.uint8).reshape(-1) & 0x0F
        if flat.size % 2:
            flat = np.append(flat, np.uint8(0))
        packed = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()
        return self.onnx.helper.make_tensor(name, proto_type, arr.shape, packed, raw=True)

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> Any:
        return self.onnx.helper.make_node(
            op, inputs, [output], name=self.names.fresh(output + "_" + op), **attrs
        )

    def to_logical(self, rep: Replacement, produced: str, value: str, dtype: str) -> None:
        """Cast `produced` (float32) to the tensor's dtype under the value name, if needed."""
        if dtype == "float32":
            rep.nodes[-1].output[0] = value
            return
        rep.nodes[-1].output[0] = produced
        rep.nodes.append(self.node("Cast", [produced], value, to=_proto_type(dtype)))

    def plain(self, rep: Replacement, arr: np.ndarray, info: TensorInfo) -> None:
        """Plain values; a Cast to the tensor's dtype when they are stored in another one."""
        v = rep.source.value
        if arr.dtype.name == info.dtype:
            rep.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(arr), v))
            return
        t = self.init(f"{v}_{arr.dtype.name}", arr)
        rep.initializers.append(t)
        rep.nodes.append(self.node("Cast", [t.name], v, to=_proto_type(info.dtype)))

    def int8(self, rep: Replacement, enc: Encoded, info: TensorInfo) -> None:
        v = rep.source.value
        axis = enc.params["axis"]
        scales = np.asarray(enc.params["scales"], np.float32).reshape(
            -1 if axis is not None else ()
        )
        q = self.init(f"{v}_quantized", np.asarray(enc.codes, np.int8))
        s = self.init(f"{v}_scale", scales)
        rep.initializers += [q, s]
        attrs = {"axis": axis} if axis is not None else {}
        rep.nodes.append(self.node("DequantizeLinear", [q.name, s.name], v, **attrs))
        self.to_logical(rep, self.names.fresh(f"{v}_dequantized"), v, info.dtype)

    def int4(self, rep: Replacement, enc: Encoded, info: TensorInfo) -> None:
        from inspector.core.schemes.symmetric_math import as_rows

        v, shape, axis = rep.source.value, enc.shape, enc.params["axis"]
        rows = as_rows(np.asarray(enc.codes, np.int8), axis)  # (M, C)
        scales = np.asarray(enc.params["scales"], np.float16)  # (C, groups)
        front = axis == 0
        codes, s16, dq_axis = (rows.T, scales, 1) if front else (rows, scales.T, 0)
        q = self.init(f"{v}_quantized", codes, self.onnx.TensorProto.INT4)
        s = self.init(f"{v}_scale", np.ascontiguousarray(s16))
        rep.initializers += [q, s]
        s32 = self.names.fresh(f"{v}_scale_float")
        rep.nodes.append(self.node("Cast", [s.name], s32, to=self.onnx.TensorProto.FLOAT))
        out = self.names.fresh(f"{v}_blocks")
        rep.nodes.append(
            self.node(
                "DequantizeLinear", [q.name, s32], out, axis=dq_axis, block_size=enc.params["group"]
            )
        )
        moved = shape if front or axis is None else (*shape[:axis], *shape[axis + 1 :], shape[axis])
        if tuple(codes.shape) != tuple(moved):
            dims = self.init(f"{v}_shape", np.asarray(moved, np.int64))
            rep.initializers.append(dims)
            out2 = self.names.fresh(f"{v}_reshaped")
            rep.nodes.append(self.node("Reshape", [out, dims.name], out2))
            out = out2
        if not front and axis is not None and axis != len(shape) - 1:
            perm = [*range(axis), len(shape) - 1, *range(axis, len(shape) - 1)]
            out2 = self.names.fresh(f"{v}_transposed")
            rep.nodes.append(self.node("Transpose", [out], out2, perm=perm))
        self.to_logical(rep, self.names.fresh(f"{v}_dequantized"), v, info.dtype)

    def affine(self, rep: Replacement, enc: Encoded, info: TensorInfo) -> None:
        v, bits = rep.source.value, enc.scheme.bits
        mn, scale = float(enc.params["min"]), float(enc.params["scale"])
        qmax = (1 << bits) - 1
        zp = int(min(max(round(-mn / scale), 0), qmax)) if scale > 0 else 0
        code_np = np.uint16 if bits == 16 else np.uint8
        proto_type = self.onnx.TensorProto.UINT4 if bits == 4 else None
        q = self.init(f"{v}_quantized", np.asarray(enc.codes, code_np), proto_type)
        s = self.init(f"{v}_scale", np.asarray(scale, np.float32))
        z = self.init(f"{v}_zero_point", np.asarray(zp, code_np), proto_type)
        offset = self.init(f"{v}_offset", np.asarray(mn + zp * scale, np.float32))
        rep.initializers += [q, s, z, offset]
        dq = self.names.fresh(f"{v}_dequantized")
        rep.nodes.append(self.node("DequantizeLinear", [q.name, s.name, z.name], dq))
        rep.nodes.append(self.node("Add", [dq, offset.name], v))
        self.to_logical(rep, self.names.fresh(f"{v}_affine"), v, info.dtype)

    def replacement(
        self, src: Any, info: TensorInfo, enc: Encoded | None, values: np.ndarray
    ) -> Replacement:
        rep = Replacement(src)
        form = _form(enc.scheme) if enc is not None else None
        if enc is None:
            self.plain(rep, np.asarray(values).astype(_np_dtype(info.dtype)), info)
        elif form == "cast":
            self.plain(rep, np.asarray(enc.codes), info)
        elif form == "int8":
            self.int8(rep, enc, info)
        elif form == "int4":
            self.int4(rep, enc, info)
        elif form == "affine":
            self.affine(rep, enc, info)
        else:
            raise FormatError("onnx", f"{enc.scheme.name} has no ONNX form", info.name)
        return rep


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _raise_opset(proto: Any, needed: int, source: Path) -> Any:
    current = model_opset(proto)
    if needed <= current:
        return proto
    try:
        from onnx import version_converter

        converted = version_converter.convert_version(proto, needed)
    except Exception as exc:
        raise FormatError(
            source,
            f"cannot raise the ONNX opset from {current} to {needed} "
            f"(needed by the chosen schemes): {exc}",
        ) from None
    if needed >= 21 and converted.ir_version < 10:
        converted.ir_version = 10
    before = [(p, len(g.node)) for p, g in iter_graphs(proto.graph)]
    if [(p, len(g.node)) for p, g in iter_graphs(converted.graph)] != before:
        raise FormatError(source, f"opset conversion to {needed} changed the graph's nodes")
    return converted


def _needed_opset(items: Sequence[tuple[Any, TensorInfo, Encoded | None, np.ndarray]]) -> int:
    needed = 1
    for _, _, enc, _ in items:
        if enc is not None:
            needed = max(needed, required_opset(enc.scheme, enc.params.get("axis")))
    return needed


def build_proto(
    model: Model,
    items: Sequence[tuple[Any, TensorInfo, Encoded | None, np.ndarray]],
    plan_json: str,
    inline: bool = True,
) -> Any:
    """The exported ModelProto: `items` are (source, info, stored encoding or None, values) of
    the tensors to replace; `inline` reads external data into the proto (False: placeholders)."""
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
    proto = _raise_opset(proto, _needed_opset(items), model.path)
    builder = _Builder(NameAllocator(proto))
    reps = [builder.replacement(src, info, enc, values) for src, info, enc, values in items]
    apply_replacements(proto, reps)
    props = [p for p in proto.metadata_props if p.key != PLAN_PROP]
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    proto.metadata_props.add(key=PLAN_PROP, value=plan_json)
    return proto


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


def write(
    model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: ExportOptions
) -> list[Path]:
    """Write the quantized ONNX model to `dest` (a temporary path the caller renames)."""
    onnx = require_onnx()
    pairs: list[tuple[str, str]] = []
    items = []
    for q in stream:
        pairs.append((q.info.name, q.scheme.spec))
        item = _item(model, q)
        if item is not None:
            items.append(item)
    proto = build_proto(model, items, resolved_plan_json(pairs))
    _note_opset(model, proto, items, opts.notes)
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


def _note_opset(model: Model, proto: Any, items: Sequence[Any], notes: list[str] | None) -> None:
    before, after = model_opset(model.metadata["onnx_proto"]), model_opset(proto)
    if notes is None or after <= before:
        return
    why = sorted(
        {
            enc.scheme.name
            for _, _, enc, _ in items
            if enc is not None and required_opset(enc.scheme, enc.params.get("axis")) > before
        }
    )
    notes.append(
        f"ONNX opset raised from {before} to {after} (IR version {proto.ir_version}): "
        f"{', '.join(why)} need{'s' if len(why) == 1 else ''} DequantizeLinear of opset {after}"
    )


def _dry_encoded(info: TensorInfo, spec: str) -> Encoded | None:
    """A zero-valued encoding with the exact shapes the stored spec would have."""
    scheme = parse_scheme(spec)
    if scheme.is_identity:
        return None
    axis = scheme.resolve_axis(info.shape, info.channel_axis)
    dtype = _np_dtype(scheme.name) if scheme.stores_values else np.uint8
    params = scheme.family.dry_params(scheme, info.shape, axis)
    return Encoded(scheme, info.shape, np.zeros(info.shape, dtype), params)


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
