"""ONNX reader: graph initializers (and Constant-node and subgraph weights) as lazy tensors.

What becomes a tensor, named so the writer can put it back where it came from
(`metadata["onnx_sources"][name]` is an `OnnxSource`):
- an initializer of any graph (main graph or an If/Loop/Scan body): named by the initializer;
- a `Constant` node's `value` tensor: named by the node's output;
- an int8/uint8/int4/uint4/int16/uint16 initializer read only by a `DequantizeLinear` whose scale
  (and zero point) are initializers: ONE tensor named by the DequantizeLinear output, values the
  decoded floats, `stored` the quantization. Its scale/zero-point initializers are parameters of
  that stored quantization (in `stored.params`), not listed as tensors of their own;
- a float16/bfloat16 initializer read only by a `Cast` to float32 (how the writer stores float16):
  one float32 tensor named by the Cast output with `stored` = float16/bfloat16.
String tensors are not weights and are not listed.

`layer` is `"<node> (<OpType>)"` of the first node reading the value. `channel_axis` is the
output-channel axis of that consumer's layout: Conv weight OIHW → 0; ConvTranspose (I, O/g, …)
→ 1; Gemm B → 0 with transB=1 (N, K), 1 with transB=0 (K, N); MatMul B (…, K, N) → last;
MatMul A (…, M, K) → second to last; Gather data (embedding rows) → 0; LSTM/GRU/RNN W/R → 1;
`None` otherwise (biases, shapes). External data is memory-mapped on demand from files that
must stay inside the model's folder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model, StoredQuantization, Tensor, TensorInfo
from inspector.formats.onnx.proto import (
    GraphPath,
    graph_label,
    iter_graphs,
    require_onnx,
    tensor_dtype_name,
    tensor_values,
)

Step = Callable[[np.ndarray], np.ndarray]
"""One numpy step the writer's nodes after a DequantizeLinear apply (reshape, transpose, …)."""

__all__ = ["OnnxSource", "dequantize", "looks_like_onnx", "read_onnx"]

_QUANT_DTYPES = frozenset({"int8", "uint8", "int4", "uint4", "int16", "uint16"})
_FLOATS = frozenset({"float32", "float16", "bfloat16", "float64"})


@dataclass(frozen=True)
class OnnxSource:
    """Where a tensor lives in the graph, so a writer can replace it in place.

    `graph`: path of the (sub)graph; `kind`: "initializer" | "constant" | "dequantize" | "cast";
    `value`: the value name the consumers read (initializer name, Constant/DQ/Cast output);
    `parts`: initializers that hold it ((name,), (q, scale[, zero_point], …), (float16 init,), ());
    `chain`: outputs of the further nodes to remove with it (Cast of scales, the DQ output before
    a Reshape/Transpose/Add/Cast that the writer adds), the node producing `value` excluded.
    """

    graph: GraphPath
    kind: str
    value: str
    parts: tuple[str, ...]
    chain: tuple[str, ...] = ()


def looks_like_onnx(path: str | os.PathLike[str]) -> bool:
    """Cheap sniff for the registry: `.onnx` suffix and a protobuf whose first field is a
    ModelProto field (ONNX has no magic bytes). Never raises; never imports onnx."""
    p = Path(path)
    if p.suffix.lower() != ".onnx" or not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    # ModelProto fields 1..20 as varint (wire type 0) or length-delimited (wire type 2) keys.
    return len(head) >= 1 and (head[0] & 7) in (0, 2) and 1 <= (head[0] >> 3) <= 20


def dequantize(
    q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, block: int
) -> np.ndarray:
    """DequantizeLinear as ONNX Runtime computes it: float32((q − zp)) · scale, in the scale's
    dtype. Per tensor (scalar scale), per axis (1-D scale along `axis`) or blocked (`block` > 0,
    scale shaped like q with `axis` divided by the block size, rounded up)."""
    zp = np.zeros((), np.int32) if zero_point is None else zero_point.astype(np.int32)
    diff = q.astype(np.int32) - _expand(zp, q, axis, block)
    y = diff.astype(np.float32) * _expand(scale.astype(np.float32), q, axis, block)
    return y.astype(scale.dtype if scale.dtype.name in _FLOATS else np.float32)


def _expand(p: np.ndarray, q: np.ndarray, axis: int, block: int) -> np.ndarray:
    if p.ndim == 0 or (p.size == 1 and block <= 0):
        return p.reshape(())
    if block > 0:
        return np.repeat(p, block, axis=axis).take(range(q.shape[axis]), axis=axis)
    shape = [1] * q.ndim
    shape[axis] = -1
    return p.reshape(shape)


def _uses(graph: Any) -> dict[str, list[tuple[Any, int]]]:
    """Every (node, input index) reading each value name, in graph order, subgraphs included."""
    uses: dict[str, list[tuple[Any, int]]] = {}
    for _, g in iter_graphs(graph):
        for node in g.node:
            for i, name in enumerate(node.input):
                if name:
                    uses.setdefault(name, []).append((node, i))
    return uses


def _attr(node: Any, name: str, default: Any) -> Any:
    onnx = require_onnx()
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _channel_axis(node: Any, index: int, ndim: int) -> int | None:
    op = node.op_type
    if ndim < 2:
        return None
    if op in ("Conv", "QLinearConv", "ConvInteger") and index == 1:
        return 0
    if op == "ConvTranspose" and index == 1:
        return 1
    if op == "Gemm" and index == 1:
        return 0 if _attr(node, "transB", 0) else 1
    if op in ("MatMul", "MatMulInteger"):
        return ndim - 1 if index == 1 else ndim - 2
    if op == "Gather" and index == 0:
        return 0
    if op in ("LSTM", "GRU", "RNN") and index in (1, 2):
        return 1
    return None


@dataclass
class _Reader:
    path: Path
    proto: Any
    uses: dict[str, list[tuple[Any, int]]]
    tensors: list[Tensor]
    sources: dict[str, OnnxSource]

    def _consumer(self, value: str, ndim: int) -> tuple[str, int | None]:
        first = self.uses.get(value)
        if not first:
            return "(unused)", None
        node, index = first[0]
        label = node.name or (node.output[0] if node.output else node.op_type)
        return f"{label} ({node.op_type})", _channel_axis(node, index, ndim)

    def _load(self, proto_tensor: Any, name: str) -> Callable[[], np.ndarray]:
        base, path = self.path.parent, self.path
        return lambda: tensor_values(proto_tensor, base, path, name)

    def add(
        self, name: str, info_kw: dict[str, Any], loader: Callable[[], np.ndarray], src: OnnxSource
    ) -> None:
        if name in self.sources:
            name = f"{graph_label(self.proto.graph, src.graph)}/{name}"
        if name in self.sources:
            raise FormatError(self.path, "duplicate tensor name", name)
        layer, axis = self._consumer(src.value, len(info_kw["shape"]))
        info = TensorInfo(name=name, layer=layer, channel_axis=axis, **info_kw)
        self.tensors.append(Tensor(info, loader))
        self.sources[name] = src

    def graph(self, path: GraphPath, g: Any) -> None:
        inits = {t.name: t for t in g.initializer}
        special, hidden = self._special_nodes(path, g, inits)
        for t in g.initializer:
            if t.name in special:
                self.add(*special[t.name])
            elif t.name not in hidden and t.data_type != require_onnx().TensorProto.STRING:
                kw = {
                    "shape": tuple(int(d) for d in t.dims),
                    "dtype": tensor_dtype_name(t.data_type),
                }
                self.add(
                    t.name,
                    kw,
                    self._load(t, t.name),
                    OnnxSource(path, "initializer", t.name, (t.name,)),
                )
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                t = next((a.t for a in node.attribute if a.name == "value"), None)
                if t is not None and t.data_type != require_onnx().TensorProto.STRING:
                    kw = {
                        "shape": tuple(int(d) for d in t.dims),
                        "dtype": tensor_dtype_name(t.data_type),
                    }
                    out = node.output[0]
                    self.add(out, kw, self._load(t, out), OnnxSource(path, "constant", out, ()))

    def _special_nodes(
        self, path: GraphPath, g: Any, inits: dict[str, Any]
    ) -> tuple[dict[str, tuple[Any, ...]], set[str]]:
        """DequantizeLinear and Cast nodes fed by initializers: the q/float16 initializer name →
        the tensor to list in its place; the scale/zero-point names to hide."""
        special: dict[str, tuple[Any, ...]] = {}
        hidden: set[str] = set()
        for node in g.node:
            if node.domain not in ("", "ai.onnx") or not node.input or not node.output:
                continue
            src = node.input[0]
            if src not in inits or len(self.uses.get(src, ())) != 1 or src in special:
                continue
            if node.op_type == "DequantizeLinear":
                entry = self._dequantized(path, node, inits, g)
            elif node.op_type == "Cast" and not self._feeds_scale(node.output[0]):
                entry = self._cast(path, node, inits[src])
            else:
                continue
            if entry is not None:
                special[src] = entry
                hidden.update(entry[3].parts[1:])
        return special, hidden

    def _feeds_scale(self, value: str) -> bool:
        return any(n.op_type == "DequantizeLinear" and i == 1 for n, i in self.uses.get(value, ()))

    def _scale_input(self, name: str, inits: dict[str, Any], g: Any) -> tuple[Any, str, str] | None:
        """The scale initializer, directly or through a Cast (float16 scales, as int4 stores)."""
        if name in inits:
            return inits[name], name, ""
        cast = next((n for n in g.node if n.op_type == "Cast" and name in n.output), None)
        if cast is None or not cast.input or cast.input[0] not in inits:
            return None
        if len(self.uses.get(cast.input[0], ())) != 1:
            return None
        return inits[cast.input[0]], cast.input[0], name

    def _follow(
        self, out: str, inits: dict[str, Any]
    ) -> tuple[str, list[Callable[[np.ndarray], np.ndarray]], list[str], list[str]]:
        """Single-consumer Reshape/Transpose/Add(scalar)/Cast after a DequantizeLinear (how the
        writer restores layout, affine offsets and dtypes): final value, numpy steps, parts."""
        steps: list[Step] = []
        parts: list[str] = []
        chain: list[str] = []
        base = self.path.parent
        while len(self.uses.get(out, ())) == 1:
            node, index = self.uses[out][0]
            other = [n for i, n in enumerate(node.input) if i != index and n]
            if node.op_type == "Reshape" and index == 0 and other and other[0] in inits:
                dims = tuple(int(d) for d in tensor_values(inits[other[0]], base, self.path))
                steps.append(functools.partial(_reshape, dims=dims))
            elif node.op_type == "Transpose" and not other:
                perm = _attr(node, "perm", None)
                steps.append(functools.partial(np.transpose, axes=perm))
            elif node.op_type == "Add" and len(other) == 1 and other[0] in inits:
                off = tensor_values(inits[other[0]], base, self.path)
                if off.size != 1:
                    break
                steps.append(functools.partial(_add_scalar, offset=off))
            elif node.op_type == "Cast" and tensor_dtype_name(_attr(node, "to", 0)) in _FLOATS:
                dt = tensor_dtype_name(_attr(node, "to", 0))
                steps.append(functools.partial(_as_dtype, dtype=_np_dtype(dt)))
            else:
                break
            parts += [n for n in other if n in inits]
            chain.append(out)
            out = node.output[0]
        return out, steps, parts, chain

    def _dequantized(
        self, path: GraphPath, node: Any, inits: dict[str, Any], g: Any
    ) -> tuple[Any, ...] | None:
        if len(node.input) < 2 or node.input[0] not in inits:
            return None
        found = self._scale_input(node.input[1], inits, g)
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if found is None or (zp_name is not None and zp_name not in inits):
            return None
        q = inits[node.input[0]]
        qdtype = tensor_dtype_name(q.data_type)
        if qdtype not in _QUANT_DTYPES:
            return None
        scale_t, scale_name, cast_out = found
        ndim = max(len(q.dims), 1)
        axis = int(_attr(node, "axis", 1))
        axis = axis + ndim if axis < 0 else axis
        block = int(_attr(node, "block_size", 0))
        base = self.path.parent
        scale = tensor_values(scale_t, base, self.path, node.output[0])
        scale = scale.astype(np.float32) if cast_out else scale
        zp = tensor_values(inits[zp_name], base, self.path, node.output[0]) if zp_name else None
        value, steps, extra, chain = self._follow(node.output[0], inits)
        probe = np.zeros(tuple(int(d) for d in q.dims), scale.dtype)
        for step in steps:
            probe = step(probe)
        parts = (node.input[0], scale_name, *([zp_name] if zp_name else []), *extra)
        kw = {"shape": probe.shape, "dtype": probe.dtype.name}
        kw["stored"] = _stored(qdtype, scale, zp, axis, block)

        def load() -> np.ndarray:
            y = dequantize(tensor_values(q, base, self.path, value), scale, zp, axis, block)
            for step in steps:
                y = step(y)
            return y

        removed = (*([cast_out] if cast_out else []), *chain, node.output[0])
        return value, kw, load, OnnxSource(path, "dequantize", value, parts, removed)

    def _cast(self, path: GraphPath, node: Any, t: Any) -> tuple[Any, ...] | None:
        onnx = require_onnx()
        dtype = tensor_dtype_name(t.data_type)
        if dtype not in ("float16", "bfloat16") or _attr(node, "to", 0) != onnx.TensorProto.FLOAT:
            return None
        out = node.output[0]
        load = self._load(t, out)
        kw = {
            "shape": tuple(int(d) for d in t.dims),
            "dtype": "float32",
            "stored": StoredQuantization(dtype),
        }
        return out, kw, lambda: load().astype(np.float32), OnnxSource(path, "cast", out, (t.name,))


def _json_values(a: np.ndarray) -> Any:
    return a.reshape(()).item() if a.size == 1 else a.tolist()


def _stored(
    qdtype: str, scale: np.ndarray, zp: np.ndarray | None, axis: int, block: int
) -> StoredQuantization:
    """The scheme spec (DESIGN §3 names) of a DequantizeLinear's storage, plus its parameters."""
    per_tensor = scale.size == 1 and block <= 0
    symmetric = zp is None or not np.any(zp)
    bits = {"int8": 8, "uint8": 8, "int4": 4, "uint4": 4, "int16": 16, "uint16": 16}[qdtype]
    if qdtype in ("int8", "int4") and symmetric:
        spec = qdtype
    else:
        spec = "uint8" if qdtype == "uint8" and per_tensor else f"affine{bits}"
    opts = [] if per_tensor else [f"axis={axis}"]
    if block > 0:
        opts.append(f"group={block}")
    if opts and spec != "uint8":
        spec = f"{spec}:{','.join(opts)}"
    params: dict[str, Any] = {"dtype": qdtype, "scale": _json_values(scale)}
    params["zero_point"] = 0 if zp is None else _json_values(zp)
    params["axis"] = None if per_tensor else axis
    if block > 0:
        params["block_size"] = block
    return StoredQuantization(spec, params)


def _io(values: Any) -> list[dict[str, Any]]:
    out = []
    for v in values:
        tt = v.type.tensor_type
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim
        ]
        dtype = tensor_dtype_name(tt.elem_type) if tt.elem_type else "unknown"
        out.append(
            {"name": v.name, "shape": dims if tt.HasField("shape") else None, "dtype": dtype}
        )
    return out


def _load_proto(path: Path) -> Any:
    onnx = require_onnx()
    if not path.is_file():
        raise FormatError(path, "no such file")
    try:
        return onnx.load(str(path), load_external_data=False)
    except InspectorError:
        raise
    except Exception as exc:
        raise FormatError(path, f"not a readable ONNX model: {exc}") from None


def read_onnx(path: str | os.PathLike[str]) -> Model:
    """Open an ONNX model lazily: the graph is parsed, tensor bytes are read on `load()`.

    metadata: `onnx_model_path`, `onnx_proto` (the parsed ModelProto without external bytes; do
    not mutate, copy it), `onnx_sources` (name → `OnnxSource`), `opset` (default domain),
    `opset_imports`, `ir_version`, `producer`, `onnx_inputs`/`onnx_outputs` ([{name, shape,
    dtype}], graph inputs backed by initializers excluded).
    """
    path = Path(path)
    proto = _load_proto(path)
    reader = _Reader(path, proto, _uses(proto.graph), [], {})
    for gpath, g in iter_graphs(proto.graph):
        reader.graph(gpath, g)
    imports = {op.domain or "ai.onnx": int(op.version) for op in proto.opset_import}
    init_names = {t.name for t in proto.graph.initializer}
    metadata = {
        "onnx_model_path": str(path),
        "onnx_proto": proto,
        "onnx_sources": reader.sources,
        "opset": imports.get("ai.onnx", 0),
        "opset_imports": imports,
        "ir_version": int(proto.ir_version),
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "onnx_inputs": _io(i for i in proto.graph.input if i.name not in init_names),
        "onnx_outputs": _io(proto.graph.output),
    }
    return Model(path, "onnx", reader.tensors, metadata)


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _reshape(a: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    return a.reshape(dims)


def _add_scalar(a: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return (a + offset.reshape(())).astype(a.dtype)


def _as_dtype(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return a.astype(dtype)
