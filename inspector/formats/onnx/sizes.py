"""Predicted ONNX export sizes: the graph built from zero-valued payloads of the exact sizes.

`onnx_overhead` is the Target's overhead (the file's bytes beyond the tensors' stored bytes);
`onnx_option_bytes` is one tensor's share of it under one scheme (its decode nodes and array
framing), which the budget solver adds to each option so a tiny tensor's decode graph is
weighed against the bytes its scheme saves.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from inspector.core.model import Model, TensorInfo
from inspector.core.schemes import Encoded, Scheme, parse_scheme
from inspector.formats._write_common import resolved_plan_json
from inspector.formats.onnx.build import build_proto, model_opset
from inspector.formats.onnx.decode import Decoder, np_dtype
from inspector.formats.onnx.edit import NameAllocator
from inspector.formats.onnx.proto import iter_graphs

__all__ = ["onnx_option_bytes", "onnx_overhead"]


def dry_encoded(info: TensorInfo, spec: str) -> Encoded | None:
    """A zero-valued encoding with the exact shapes the stored spec would have."""
    scheme = parse_scheme(spec)
    if scheme.is_identity:
        return None
    axis = scheme.resolve_axis(info.shape, info.channel_axis)
    dtype = np_dtype(scheme.name) if scheme.stores_values else np.uint8
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
        enc = None if row.skipped is not None else dry_encoded(info, row.stored)
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


def onnx_option_bytes(model: Model, info: TensorInfo, stored: Scheme) -> int:
    """Bytes the export adds for this tensor stored as `stored`, beyond its stored bytes and
    beyond what it costs kept as it is: its decode nodes and the framing of its arrays (helper
    constants shared across tensors are left out). An estimate for the budget solver, which
    checks the whole plan with `onnx_overhead` afterwards."""
    if model.format != "onnx" or "onnx_sources" not in model.metadata:
        return 0
    key = (info.name, stored.spec)
    cache = _option_cache(model)
    if key not in cache:
        cache[key] = _option_bytes(model, info, stored)
    return cache[key]


_CACHES: weakref.WeakKeyDictionary[Model, dict[tuple[str, str], int]] = weakref.WeakKeyDictionary()
"""Per open model (dropped with it): (tensor name, stored spec) → option bytes."""


def _option_cache(model: Model) -> dict[tuple[str, str], int]:
    held = _CACHES.get(model)
    if held is None:
        held = _CACHES[model] = {}
    return held


def _option_bytes(model: Model, info: TensorInfo, stored: Scheme) -> int:
    src = model.metadata["onnx_sources"][info.name]
    enc = dry_encoded(info, stored.spec)
    if enc is None:
        return 0
    decoder = Decoder(NameAllocator(None), model_opset(model.metadata["onnx_proto"]))
    rep = decoder.replacement(src, info, enc, np.zeros(info.shape, np.float32))
    kept = decoder.replacement(src, info, None, np.zeros(info.shape, np.float32))
    return max(0, _framed(rep) - _framed(kept) - (enc.nbytes - info.nbytes))


def _framed(rep: Any) -> int:
    """Serialized bytes of a replacement's arrays and nodes, each with its field tag and
    length (2-4 bytes; 3 counted); Constant nodes add their node framing (about 12 bytes)."""
    wrapper = 12 if rep.source.kind == "constant" else 0
    arrays = sum(t.ByteSize() + 3 + wrapper for t in rep.initializers)
    return arrays + sum(n.ByteSize() + 3 for n in rep.nodes)
