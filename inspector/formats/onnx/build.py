"""The exported ONNX graph: the input's graph with each quantized tensor's new producers.

`build_proto` is shared by the writer (real payloads) and the size prediction (sizes.py, zero
payloads of the same sizes), so the predicted and written sizes agree to the byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model, TensorInfo
from inspector.core.schemes import Encoded
from inspector.formats.onnx.decode import Decoder
from inspector.formats.onnx.edit import NameAllocator, apply_replacements
from inspector.formats.onnx.proto import iter_graphs, materialize_external, require_onnx

__all__ = ["MIN_OPSET", "PLAN_PROP", "build_proto", "model_opset"]

PLAN_PROP = "quant_inspector_plan"
MIN_OPSET = 7


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
