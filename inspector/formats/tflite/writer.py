"""TF-Lite writer (TF-Lite in → TF-Lite out): each weight re-stored the way the converter does.

Storage per scheme (`TFLITE_TARGET`), the converter's own forms:
- `float16`: a FLOAT16 constant feeding DEQUANTIZE (float16 post-training quantization);
- `int8` (symmetric per output channel, scale = max|w|/127): as the converter's dynamic-range
  mode, the INT8 constant read directly by the hybrid kernels of FULLY_CONNECTED, CONV_2D and
  DEPTHWISE_CONV_2D when every reader is one of them at the weight input and the channel axis is
  the kernel's (0, 0, 3); otherwise INT8 + DEQUANTIZE (per channel along any axis);
- `float32`: a plain constant; a tensor stored quantized in the input and kept is written as
  float32 (the values the preview shows);
- `bfloat16` → float32 (exact: TF-Lite's DEQUANTIZE reads no bfloat16); other ≤ 8-bit schemes
  (uint8, affineN, kmeansN, int4 groups) → baked to int8 per channel; uint16/affine9–16 →
  float16; each with a note.
Weights of integer kernels (full-integer models) must stay integers: symmetric int8 weights of
CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED are re-stored as int8 per channel whatever the
plan says (the plan's scheme first, then int8; the bias is re-scaled to the new weight scales),
everything else there is kept as stored.

The resolved plan is recorded as metadata `quant_inspector_plan`; storing any float16 weight
adds the converter's `reduced_precision_support` = `fp16accfp32` entry. Metadata, signatures and
other subgraphs are kept; the preview's overhead is the exact file built with zero payloads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.schemes.floats import FLOATS
from inspector.core.schemes.symmetric import SYMMETRIC
from inspector.core.target import Storage, Target
from inspector.formats._write_common import FLOAT32
from inspector.formats.base import ExportOptions
from inspector.formats.tflite.edit import HYBRID, Store, apply_stores, serialize
from inspector.formats.tflite.flatbuf import Blob, FileSource
from inspector.formats.tflite.flatbuild import Chunk
from inspector.formats.tflite.graph import graphs, tensor_type
from inspector.formats.tflite.reader import TfliteSource

__all__ = [
    "PLAN_METADATA",
    "TFLITE_TARGET",
    "hybrid_readers",
    "plan_json",
    "tflite_storage",
    "write",
]

PLAN_METADATA = "quant_inspector_plan"
_FLOAT16 = parse_scheme("float16")
_REDUCED_PRECISION = ("reduced_precision_support", b"fp16accfp32")


def _form(scheme: Scheme) -> str | None:
    """How TF-Lite stores `scheme` natively — "float" (float32/float16 values) or "int8"
    (symmetric per channel, zero points 0) — or None when it must be baked. The one place
    families map to TF-Lite."""
    if scheme.family is FLOATS and scheme.exact_dtype in ("float32", "float16"):
        return "float"
    if scheme.family is SYMMETRIC and scheme.bits == 8:
        return "int8"
    return None


def tflite_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """How TF-Lite stores `scheme` for `info` (see the module docstring)."""
    kernel = info.stored.params.get("kernel") if info.stored is not None else None
    if kernel == "integer":
        return Storage(())
    if kernel == "integer-int8":
        return _integer_int8(info, scheme)
    if scheme.is_identity:
        return Storage(())
    if _form(scheme) is not None:
        return Storage((scheme,))
    if scheme.family is FLOATS:
        note = (
            f"{scheme.name} stored as float32 (exact): TF-Lite's DEQUANTIZE reads no {scheme.name}"
        )
        return Storage((scheme, FLOAT32), note)
    if scheme.bits <= 8:
        int8 = parse_scheme("int8")
        note = f"{scheme.name} baked to int8 per channel: TF-Lite stores weights as int8"
        return Storage((scheme, int8), note)
    note = f"{scheme.name} baked to float16: TF-Lite stores no {scheme.bits}-bit codes"
    return Storage((scheme, _FLOAT16), note)


def _integer_int8(info: TensorInfo, scheme: Scheme) -> Storage:
    axis = info.stored.params.get("axis") if info.stored is not None else None
    int8 = parse_scheme("int8" if axis is None else f"int8:axis={axis}")
    note = "integer kernel: weights re-stored as int8 per channel, the bias re-scaled"
    if _form(scheme) == "int8" and scheme.axis in (None, axis):
        return Storage((scheme,))
    return Storage((int8,) if scheme.is_identity else (scheme, int8), note)


_Key = tuple[int, int]


def hybrid_readers(model: Model) -> dict[_Key, list[_Key]]:
    """(subgraph, value tensor) → the biases of its readers, for every value whose readers
    are all hybrid-capable kernels at their weight input with float activations (and that is
    no subgraph output)."""
    tree = model.metadata["tflite_tree"]
    out: dict[_Key, list[_Key]] = {}
    for g in graphs(tree):
        fixed = {int(i) for i in g.tree.get("outputs", [])}
        for t, uses in g.consumers.items():
            ok = t not in fixed and all(
                g.ops[k] in HYBRID
                and pos == 1
                and tensor_type(g.tensors[int(g.operators[k]["inputs"][0])]) == "FLOAT32"
                for k, pos in uses
            )
            if ok:
                ins = [[int(i) for i in g.operators[k]["inputs"]] for k, _ in uses]
                out[(g.index, t)] = [(g.index, i[2]) for i in ins if len(i) > 2 and i[2] >= 0]
    return out


def _settle(stores: list[Store], hybrid: dict[_Key, list[_Key]]) -> list[Store]:
    """Hybrid kernels need a constant float32 bias (XNNPACK refuses a hybrid convolution
    whose bias comes from a DEQUANTIZE): an int8 weight whose reader's bias is stored through
    DEQUANTIZE is stored through DEQUANTIZE too."""
    dequantized = {(st.source.subgraph, st.source.value) for st in stores if st.dequantize}
    for st in stores:
        key = (st.source.subgraph, st.source.value)
        if st.dtype == "int8" and not st.dequantize and st.source.kernel != "integer":
            st.dequantize = any(b in dequantized for b in hybrid.get(key, []))
    return stores


def _store(
    src: TfliteSource,
    info: TensorInfo,
    stored: Scheme | None,
    values: Any,
    params: dict[str, Any],
    hybrid: dict[_Key, list[_Key]],
) -> Store | None:
    """The `Store` for one tensor; `values` are the stored codes (or float values) or a `Chunk`
    of their size, `stored` the last storage stage (None: kept as it is)."""
    if stored is None:
        if info.stored is None or src.kernel == "integer" or info.dtype != "float32":
            return None
        return Store(src, "float32", values)
    if _form(stored) == "float":
        dtype = stored.exact_dtype
        return Store(src, dtype, values, dequantize=dtype == "float16")
    axis = params["axis"]
    scales = np.asarray(params["scales"], np.float32)
    direct = src.kernel == "integer" or (
        (src.subgraph, src.value) in hybrid and _kernel_axis(info) in (axis, None)
    )
    return Store(src, "int8", values, not direct, scales, axis)


def _kernel_axis(info: TensorInfo) -> int | None:
    return info.channel_axis


def plan_json(pairs: Sequence[tuple[str, str]]) -> str:
    """The resolved plan (every tensor's requested scheme) as compact plan JSON: the most
    common scheme as the default, the others as overrides — what `Plan.from_json` reads and
    resolves to the same schemes, in a few dozen bytes for a uniform plan (a 20 kB model
    should not carry a 500-byte list of its own tensor names)."""
    counts = Counter(spec for _, spec in pairs)
    default = (
        max(counts, key=lambda spec: (counts[spec], spec == "float32")) if counts else "float32"
    )
    overrides = {name: spec for name, spec in pairs if spec != default}
    doc = {"version": 1, "default": default, "rules": [], "overrides": overrides}
    return json.dumps(doc, separators=(",", ":"))


def _metadata(pairs: Sequence[tuple[str, str]], stores: Sequence[Store]) -> dict[str, bytes]:
    meta = {PLAN_METADATA: plan_json(pairs).encode("utf-8")}
    if any(st.dtype == "float16" for st in stores):
        meta[_REDUCED_PRECISION[0]] = _REDUCED_PRECISION[1]
    return meta


def _reader(src: FileSource) -> tuple[Any, Any]:
    def read(blob: Blob) -> bytes:
        return src.read_exact(blob.offset, blob.length)

    def chunk(blob: Blob) -> Chunk:
        return Chunk(blob.length, lambda: read(blob))

    return read, chunk


def _check_input(model: Model) -> FileSource:
    if model.format != "tflite" or "tflite_tree" not in model.metadata:
        raise InspectorError(
            f"{model.path}: TF-Lite export needs a TF-Lite model (the graph comes from the input)"
        )
    return model.metadata["tflite_source"]


def write(
    model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: ExportOptions | None
) -> list[Path]:
    """Write the re-quantized model to `dest` (a temporary path the caller renames)."""
    src = _check_input(model)
    sources = model.metadata["tflite_sources"]
    hybrid = hybrid_readers(model)
    pairs: list[tuple[str, str]] = []
    stores: list[Store] = []
    for q in stream:
        pairs.append((q.info.name, q.scheme.spec))
        enc = q.encoded
        stored = q.storage.stored if enc is not None else None
        values = np.asarray(enc.codes if enc is not None else q.original)
        if stored is not None and stored.name == "float32":
            values = np.asarray(q.decoded, np.float32)
        params = dict(enc.params) if enc is not None else {}
        st = _store(sources[q.info.name], q.info, stored, values, params, hybrid)
        if st is not None:
            stores.append(st)
    read, chunk = _reader(src)
    stores = _settle(stores, hybrid)
    tree = apply_stores(
        model.metadata["tflite_tree"], stores, read, src.size, _metadata(pairs, stores)
    )
    try:
        with open(dest, "wb") as fh:
            for part in serialize(tree, chunk).parts():
                fh.write(part)
    except ValueError as exc:
        raise FormatError(model.path, f"cannot re-write the model: {exc}") from None
    return [Path(dest)]


def _dry(info: TensorInfo, row: Any) -> tuple[Scheme | None, Any, dict[str, Any]]:
    """Stored stage, a zero payload of the stored size, and parameters shaped as stored."""
    if row.skipped is not None:
        return None, Chunk(info.nbytes, lambda: bytes(info.nbytes)), {}
    stored = parse_scheme(row.stored)
    if _form(stored) == "float":
        n = info.size * (2 if stored.exact_dtype == "float16" else 4)
        return stored, Chunk(n, lambda: bytes(n)), {}
    axis = stored.resolve_axis(info.shape, info.channel_axis)
    params = stored.family.dry_params(stored, info.shape, axis)
    return stored, Chunk(info.size, lambda: bytes(info.size)), params


def tflite_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """The file's bytes beyond the previews' `quantized_bytes`: the export is built with zero
    payloads of the exact sizes; its size minus the tensors' stored bytes is the overhead (the
    structural bytes, cut or zero-padded to that length)."""
    if model.format != "tflite" or "tflite_tree" not in model.metadata:
        return b""
    src = model.metadata["tflite_source"]
    sources = model.metadata["tflite_sources"]
    hybrid = hybrid_readers(model)
    stores = []
    for row in previews:
        info = model[row.name].info
        stored, payload, params = _dry(info, row)
        st = _store(sources[row.name], info, stored, payload, params, hybrid)
        if st is not None:
            stores.append(st)
    read, chunk = _reader(src)
    stores = _settle(stores, hybrid)
    meta = _metadata([(r.name, r.scheme) for r in previews], stores)
    tree = apply_stores(model.metadata["tflite_tree"], stores, read, src.size, meta)
    builder = serialize(tree, chunk)
    size = builder.size - sum(r.quantized_bytes for r in previews)
    structure = b"".join(p for p in builder.structure())
    return structure[: max(size, 0)].ljust(max(size, 0), b"\0")


TFLITE_TARGET = Target("tflite", tflite_storage, tflite_overhead)
