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

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Encoded, Scheme, parse_scheme
from inspector.core.schemes.affine import AFFINE
from inspector.core.target import Storage, Target
from inspector.formats._write_common import resolved_plan_json
from inspector.formats.base import ExportOptions
from inspector.formats.onnx.build import MIN_OPSET, PLAN_PROP, build_proto, model_opset
from inspector.formats.onnx.decode import onnx_form
from inspector.formats.onnx.proto import require_onnx
from inspector.formats.onnx.sizes import onnx_option_bytes, onnx_overhead

__all__ = ["MIN_OPSET", "ONNX_TARGET", "PLAN_PROP", "model_opset", "onnx_storage", "write"]

_MAX_PROTO = 2**31 - 1


def onnx_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """How ONNX stores `scheme`: natively when DequantizeLinear/Cast (or, below their opset,
    Cast/Mul/Add) express it, else baked into uint8/uint16 codes."""
    if scheme.is_identity:
        return Storage(())
    if onnx_form(scheme) is not None:
        return Storage((scheme,))
    into = "uint8" if scheme.bits <= 8 else "uint16"
    why = f"{scheme.bits}-bit codes" if scheme.family is AFFINE else f"{scheme.name} layout"
    note = f"{scheme.name} baked to {into}: ONNX DequantizeLinear has no {why}"
    return Storage((scheme, parse_scheme(into)), note)


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
    proto = build_proto(model, items, resolved_plan_json(pairs), notes=opts.notes)
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


ONNX_TARGET = Target("onnx", onnx_storage, onnx_overhead, option_bytes=onnx_option_bytes)
