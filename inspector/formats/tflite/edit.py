"""Re-store weights in a decoded TF-Lite model tree and serialize it (writer and runner share it).

A `Store` says how one listed tensor's value is now produced (see `TfliteSource`):
- `float32`: the value tensor becomes a FLOAT32 constant (a DEQUANTIZE that produced it goes);
- `float16` / `int8` with `dequantize=True`: a FLOAT16 / INT8 (scales per channel, zero points
  0) constant feeding a DEQUANTIZE whose output is the value tensor, as the converter's float16
  and weight-only modes write it; new DEQUANTIZE operators go first in the subgraph;
- `int8` with `dequantize=False`: the value tensor itself becomes the INT8 constant, read by
  hybrid kernels (float activations, integer weights) or by integer kernels. For an integer
  kernel the operator's int32 bias is re-scaled to input scale × new weight scale.
Consumers keep reading the same tensor index, so operators, subgraph inputs/outputs and
signatures need no change beyond removing tensors nothing reads any more and renumbering.
Buffers no tensor or metadata entry uses are dropped; buffer 0 stays the empty sentinel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspector.formats.tflite.flatbuf import Blob
from inspector.formats.tflite.flatbuild import Builder, Chunk, Placeholder
from inspector.formats.tflite.graph import buffer_blob, op_name
from inspector.formats.tflite.reader import IDENTIFIER, TfliteSource
from inspector.formats.tflite.schema import UNIONS

__all__ = ["HYBRID", "Store", "apply_stores", "serialize"]

HYBRID = {"FULLY_CONNECTED": 0, "CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}
"""Operators with hybrid kernels for an int8 weight at input 1: the required channel axis."""
_HYBRID_VERSION = {"FULLY_CONNECTED": (12, 9), "CONV_2D": (5, 2), "DEPTHWISE_CONV_2D": (6, 4)}
_TYPES = {"float32": 0, "float16": 1, "int32": 2, "int8": 9}
_DEQUANTIZE = 6
EXTERNAL_ABOVE = 2**31 - (1 << 24)
"""Models whose buffers exceed this many bytes store them past the flatbuffer (offset/size)."""


@dataclass
class Store:
    """New storage of one tensor: `data` as the stored dtype (float32/float16 values or int8
    codes) or a `Chunk`; `scales` per channel along `axis` for int8."""

    source: TfliteSource
    dtype: str
    data: np.ndarray | Chunk
    dequantize: bool = False
    scales: np.ndarray | None = None
    axis: int | None = None


@dataclass
class _Sub:
    """One subgraph being edited."""

    tree: dict[str, Any]
    tensors: list[dict[str, Any]]
    operators: list[dict[str, Any]]
    front: list[dict[str, Any]] = field(default_factory=list)
    dropped_ops: set[int] = field(default_factory=set)
    orphans: set[int] = field(default_factory=set)


class _Edit:
    def __init__(self, tree: dict[str, Any], read: Callable[[Blob], bytes], size: int) -> None:
        self.model = {k: v for k, v in tree.items() if k not in ("subgraphs", "buffers")}
        self.model["operator_codes"] = [dict(c) for c in tree.get("operator_codes", [])]
        self.read = read
        self.buffers: list[dict[str, Any]] = []
        for b in tree.get("buffers", []):
            blob = buffer_blob(b, size)
            self.buffers.append({"data": blob} if blob is not None else {})
        self.subs = [
            _Sub(sg, list(sg.get("tensors", [])), list(sg.get("operators", [])))
            for sg in tree.get("subgraphs", [])
        ]
        self.versions: dict[str, int] = {}

    def new_buffer(self, data: np.ndarray | Chunk) -> int:
        if isinstance(data, np.ndarray):
            raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
            data = Chunk(raw.size, lambda raw=raw: memoryview(raw))  # type: ignore[misc]
        self.buffers.append({"data": data})
        return len(self.buffers) - 1

    def buffer_bytes(self, index: int) -> bytes:
        data = self.buffers[index].get("data")
        if isinstance(data, Chunk):
            return bytes(data.produce())
        return self.read(data) if isinstance(data, Blob) else b""

    def need(self, op: str, version: int) -> None:
        self.versions[op] = max(self.versions.get(op, 1), version)

    def apply(self, st: Store) -> None:
        sub = self.subs[st.source.subgraph]
        src = st.source
        value = dict(sub.tensors[src.value])
        for key in ("quantization", "sparsity"):
            value.pop(key, None)
        if src.dequantize is not None:
            sub.dropped_ops.add(src.dequantize)
        if src.tensor != src.value:
            sub.orphans.add(src.tensor)
        if st.dequantize:
            self._with_dequantize(sub, st, value)
        else:
            value["type"] = _TYPES[st.dtype]
            value["buffer"] = self.new_buffer(st.data)
            if st.scales is not None:
                value["quantization"] = _quant(st.scales, st.axis)
                self._hybrid(sub, src.value, st)
            sub.tensors[src.value] = value

    def _with_dequantize(self, sub: _Sub, st: Store, value: dict[str, Any]) -> None:
        stored: dict[str, Any] = {
            "shape": value.get("shape", []),
            "type": _TYPES[st.dtype],
            "buffer": self.new_buffer(st.data),
            "name": value.get("name", ""),
        }
        if st.scales is not None:
            stored["quantization"] = _quant(st.scales, st.axis)
        sub.tensors.append(stored)
        value["type"], value["buffer"] = 0, 0
        sub.tensors[st.source.value] = value
        index = len(sub.tensors) - 1
        sub.front.append(
            {
                "opcode_index": self.opcode(_DEQUANTIZE),
                "inputs": [index],
                "outputs": [st.source.value],
            }
        )
        per_channel = st.scales is not None and st.scales.size > 1
        self.need("DEQUANTIZE", 3 if st.dtype == "float16" else 5 if per_channel else 2)

    def _hybrid(self, sub: _Sub, value: int, st: Store) -> None:
        """Raise the versions of the operators reading an int8 weight directly; float
        activations make them hybrid (FULLY_CONNECTED quantizes its inputs asymmetrically, as
        the converter sets it); integer activations get their bias re-scaled."""
        per_channel = st.scales is not None and st.scales.size > 1
        for k, op in enumerate(sub.operators):
            ins = [int(i) for i in op.get("inputs", [])]
            if len(ins) < 2 or ins[1] != value:
                continue
            name = op_name(self.model, int(op.get("opcode_index", 0)))
            if st.source.kernel == "integer":
                sub.operators[k] = _rescale_bias(self, sub, op, st)
                continue
            self.need(name, _HYBRID_VERSION[name][0 if per_channel else 1])
            if name == "FULLY_CONNECTED":
                sub.operators[k] = _asymmetric_inputs(op)

    def opcode(self, builtin: int) -> int:
        codes = self.model["operator_codes"]
        for i, c in enumerate(codes):
            if max(int(c.get("deprecated_builtin_code", 0)), int(c.get("builtin_code", 0))) == (
                builtin
            ) and not c.get("custom_code"):
                return i
        codes.append({"deprecated_builtin_code": builtin, "builtin_code": builtin, "version": 1})
        return len(codes) - 1


def _quant(scales: np.ndarray, axis: int | None) -> dict[str, Any]:
    s = np.asarray(scales, np.float32).reshape(-1)
    return {
        "scale": s,
        "zero_point": np.zeros(s.size, np.int64),
        "quantized_dimension": int(axis or 0),
    }


def _asymmetric_inputs(op: dict[str, Any]) -> dict[str, Any]:
    op = dict(op)
    code = UNIONS["BuiltinOptions"].index("FullyConnectedOptions") + 1
    if int(op.get("builtin_options_type", 0)) != code:
        op["builtin_options_type"], op["builtin_options"] = code, {}
    op["builtin_options"] = {**op["builtin_options"], "asymmetric_quantize_inputs": True}
    return op


def _rescale_bias(edit: _Edit, sub: _Sub, op: dict[str, Any], st: Store) -> dict[str, Any]:
    """An integer kernel adds its int32 bias to the accumulator of input × weight codes, so the
    bias is stored in units of input scale × weight scale: re-quantize it to the new weight
    scales (round half to even); unchanged scales keep its codes."""
    ins = [int(i) for i in op.get("inputs", [])]
    if len(ins) < 3 or ins[2] < 0:
        return op
    inp, bias = sub.tensors[ins[0]], sub.tensors[ins[2]]
    bq, iq = bias.get("quantization") or {}, inp.get("quantization") or {}
    if "scale" not in bq or "scale" not in iq or int(bias.get("type", 0)) != _TYPES["int32"]:
        return op
    new_scale = (np.float32(iq["scale"][0]) * np.asarray(st.scales, np.float32)).astype(np.float32)
    old_scale = np.asarray(bq["scale"], np.float32)
    codes = np.frombuffer(edit.buffer_bytes(int(bias.get("buffer", 0))), "<i4")
    if not (old_scale.shape == new_scale.shape and np.array_equal(old_scale, new_scale)):
        real = codes.astype(np.float64) * old_scale.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rescaled = np.rint(real / new_scale.astype(np.float64))
        codes = np.clip(np.nan_to_num(rescaled), -(2**31), 2**31 - 1).astype("<i4")
    # A new buffer either way: the file's layout must not depend on the values (the preview
    # predicts the size from a dry run with placeholder scales).
    new_bias = {k: v for k, v in bias.items() if k != "quantization"}
    new_bias["buffer"] = edit.new_buffer(np.ascontiguousarray(codes, "<i4"))
    new_bias["quantization"] = {**bq, "scale": new_scale}
    sub.tensors[ins[2]] = new_bias
    return op


def _renumber(sub: _Sub, keep_refs: Iterable[int]) -> list[int]:
    """Drop the constants the edit orphaned (nothing reads them any more), renumber the rest:
    returns old index → new index (−1 for dropped)."""
    ops = sub.front + [op for k, op in enumerate(sub.operators) if k not in sub.dropped_ops]
    used = set(keep_refs)
    used.update(int(i) for i in sub.tree.get("inputs", []))
    used.update(int(i) for i in sub.tree.get("outputs", []))
    for op in ops:
        for key in ("inputs", "outputs", "intermediates"):
            used.update(int(i) for i in op.get(key, []))
    mapping, n = [], 0
    for i in range(len(sub.tensors)):
        if i in sub.orphans and i not in used:
            mapping.append(-1)
        else:
            mapping.append(n)
            n += 1
    sub.tensors = [t for i, t in enumerate(sub.tensors) if mapping[i] >= 0]

    def remap(seq: Any) -> list[int]:
        return [mapping[int(i)] if int(i) >= 0 else -1 for i in seq]

    sub.operators = []
    for op in ops:
        op = dict(op)
        for key in ("inputs", "outputs", "intermediates"):
            if key in op:
                op[key] = remap(op[key])
        sub.operators.append(op)
    sub.tree = {**sub.tree, "tensors": sub.tensors, "operators": sub.operators}
    for key in ("inputs", "outputs"):
        if key in sub.tree:
            sub.tree[key] = remap(sub.tree[key])
    return mapping


def _finish(edit: _Edit, metadata: dict[str, bytes]) -> dict[str, Any]:
    """The edited model tree: tensors renumbered, unused buffers dropped, operator versions
    raised to what the new storage needs, `metadata` entries added or replaced."""
    sigs = [dict(sig) for sig in edit.model.get("signature_defs", [])]
    for s, sub in enumerate(edit.subs):
        refs = [
            int(m.get("tensor_index", 0))
            for sig in sigs
            if int(sig.get("subgraph_index", 0)) == s
            for m in (*sig.get("inputs", []), *sig.get("outputs", []))
        ]
        mapping = _renumber(sub, refs)
        for sig in sigs:
            if int(sig.get("subgraph_index", 0)) == s:
                for key in ("inputs", "outputs"):
                    sig[key] = [
                        {**m, "tensor_index": mapping[int(m.get("tensor_index", 0))]}
                        for m in sig.get(key, [])
                    ]
    model = dict(edit.model)
    if sigs:
        model["signature_defs"] = sigs
    entries = [m for m in model.get("metadata", []) if m.get("name") not in metadata]
    for name, data in metadata.items():
        entries.append({"name": name, "buffer": edit.new_buffer(np.frombuffer(data, np.uint8))})
    model["metadata"] = entries
    for code in model["operator_codes"]:
        name = op_name({"operator_codes": [code]}, 0)
        if name in edit.versions:
            code["version"] = max(int(code.get("version", 1)), edit.versions[name])
    model["subgraphs"] = [sub.tree for sub in edit.subs]
    _compact_buffers(model, edit.buffers)
    return model


def _compact_buffers(model: dict[str, Any], buffers: list[dict[str, Any]]) -> None:
    used = {0}
    for sg in model["subgraphs"]:
        used.update(int(t.get("buffer", 0)) for t in sg.get("tensors", []))
    used.update(int(m.get("buffer", 0)) for m in model.get("metadata", []))
    used.update(int(b) for b in model.get("metadata_buffer", []))
    order = sorted(used)
    mapping = {old: new for new, old in enumerate(order)}
    model["buffers"] = [buffers[old] for old in order]
    for sg in model["subgraphs"]:
        sg["tensors"] = [
            {**t, "buffer": mapping[int(t.get("buffer", 0))]} if t.get("buffer") else t
            for t in sg.get("tensors", [])
        ]
    model["metadata"] = [
        {**m, "buffer": mapping[int(m.get("buffer", 0))]} for m in model["metadata"]
    ]
    if "metadata_buffer" in model:
        model["metadata_buffer"] = [mapping[int(b)] for b in model["metadata_buffer"]]


def apply_stores(
    tree: dict[str, Any],
    stores: Iterable[Store],
    read: Callable[[Blob], bytes],
    file_size: int,
    metadata: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """The model tree with every `Store` applied (`tree` is not modified)."""
    edit = _Edit(tree, read, file_size)
    for st in stores:
        edit.apply(st)
    return _finish(edit, metadata or {})


def serialize(model: dict[str, Any], read_chunk: Callable[[Blob], Chunk]) -> Builder:
    """A `Builder` holding the model's FlatBuffer (iterate `parts()` to write it). Buffers go
    inside the flatbuffer (data of 1 KiB or more 16-aligned), unless they exceed `EXTERNAL_ABOVE` in
    all: then each is stored after the flatbuffer (16-aligned) and found by `offset`/`size`."""
    sizes = [_data_length(b, read_chunk) for b in model["buffers"]]
    if sum(sizes) <= EXTERNAL_ABOVE:
        builder = Builder(read_chunk, frozenset({"data"}))
        builder.finish("Model", model, IDENTIFIER)
        return builder
    external = dict(model)
    external["buffers"] = [
        {"offset": Placeholder(i), "size": n} if n else {} for i, n in enumerate(sizes)
    ]
    builder = Builder(read_chunk, frozenset({"data"}))
    builder.finish("Model", external, IDENTIFIER)
    for i, (buf, n) in enumerate(zip(model["buffers"], sizes, strict=True)):
        if n:
            data = buf["data"]
            chunk = read_chunk(data) if isinstance(data, Blob) else data
            builder.patch_u64(i, builder.append_chunk(chunk, 16))
    return builder


def _data_length(buf: dict[str, Any], read_chunk: Callable[[Blob], Chunk]) -> int:
    data = buf.get("data")
    if isinstance(data, Blob):
        return data.length
    return data.length if isinstance(data, Chunk) else 0
