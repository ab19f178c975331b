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

How the graph consumes each value decides its `TensorInfo` (roles.py): a weight gets the
`layer` of its compute op ("<node> (<OpType>)") and that op's output-channel axis (Conv weight
OIHW → 0; ConvTranspose (I, O/g, …) → 1; Gemm B → 0 with transB=1 (N, K), 1 with transB=0;
MatMul B (…, K, N) → last, A (…, M, K) → second to last; Gather embedding rows → 0;
LSTM/GRU/RNN W/R → 1), mapped back through Transpose/Reshape/Cast; a float tensor that is not a
weight gets `kept` (the reason) and `kept_overridable`. External data is read on
demand (positional reads, never a memory map) from files that must stay inside the model's folder;
every declared shape is checked against the bytes that hold it before anything is allocated
(dq.py checks DequantizeLinear's shape rules and the layout nodes after it).
"""

from __future__ import annotations

import functools
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError, InspectorError
from inspector.core.model import Model, StoredQuantization, Tensor, TensorInfo
from inspector.formats._common import contained_path
from inspector.formats._mmap import check_regular
from inspector.formats.onnx.dq import (
    Step,
    cast_target,
    check_dq,
    dequantize,
    reshape_step,
    stored_quantization,
    transpose_step,
)
from inspector.formats.onnx.proto import (
    MAX_RANK,
    GraphPath,
    declared_shape,
    graph_label,
    int_attr,
    iter_graphs,
    node_attr,
    require_onnx,
    tensor_dtype_name,
    tensor_values,
)
from inspector.formats.onnx.roles import RoleFinder

MAX_CHAIN = 64
"""Most layout nodes followed after a DequantizeLinear (the writer adds at most four)."""

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


@dataclass
class _Reader:
    path: Path
    proto: Any
    roles: RoleFinder
    file_bytes: int
    tensors: list[Tensor] = field(default_factory=list)
    sources: dict[str, OnnxSource] = field(default_factory=dict)

    @property
    def uses(self) -> dict[str, list[tuple[Any, int]]]:
        return self.roles.uses

    def _load(self, proto_tensor: Any, name: str) -> Callable[[], np.ndarray]:
        base, path = self.path.parent, self.path
        return lambda: tensor_values(proto_tensor, base, path, name)

    def shape(self, t: Any, name: str) -> tuple[int, ...]:
        """A tensor's declared dims, refused when the bytes that hold them (this file, or its
        external data file) cannot store that many elements."""
        bound: int | None = self.file_bytes
        if t.data_location == require_onnx().TensorProto.EXTERNAL:
            location = next((e.value for e in t.external_data if e.key == "location"), None)
            try:
                st = contained_path(self.path.parent, location, self.path).stat()
                bound = st.st_size if stat.S_ISREG(st.st_mode) else None
            except (InspectorError, OSError):
                bound = None  # reported with the data file's name when the tensor is loaded
        return declared_shape(t, self.path, name, bound)

    def add(
        self, name: str, info_kw: dict[str, Any], loader: Callable[[], np.ndarray], src: OnnxSource
    ) -> None:
        if name in self.sources:
            label = graph_label(self.proto.graph, src.graph)
            if not label:
                raise FormatError(
                    self.path, "two tensors of the main graph have this name (ONNX names a "
                    "value once): the file is ambiguous", name
                )  # fmt: skip
            name = f"{label}/{name}"
        if name in self.sources:
            raise FormatError(self.path, "duplicate tensor name", name)
        role = self.roles.role(src.value, tuple(info_kw["shape"]))
        info = TensorInfo(name=name, layer=role.layer, channel_axis=role.channel_axis, **info_kw)
        if info.is_float and role.kept is not None:
            info = replace(info, kept=role.kept, kept_overridable=role.overridable)
        self.tensors.append(Tensor(info, loader))
        self.sources[name] = src

    def _initializers(self, path: GraphPath, g: Any) -> dict[str, Any]:
        inits: dict[str, Any] = {}
        for t in g.initializer:
            if t.name in inits:
                where = graph_label(self.proto.graph, path) or "the main graph"
                raise FormatError(
                    self.path, f"two initializers of {where} have this name (ONNX names a "
                    "value once): the file is ambiguous", t.name
                )  # fmt: skip
            inits[t.name] = t
        return inits

    def graph(self, path: GraphPath, g: Any) -> None:
        inits = self._initializers(path, g)
        special, hidden = self._special_nodes(path, g, inits)
        string = require_onnx().TensorProto.STRING
        for t in g.initializer:
            if t.name in special:
                self.add(*special[t.name])
            elif t.name not in hidden and t.data_type != string:
                kw = {"shape": self.shape(t, t.name), "dtype": tensor_dtype_name(t.data_type)}
                src = OnnxSource(path, "initializer", t.name, (t.name,))
                self.add(t.name, kw, self._load(t, t.name), src)
        for node in g.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                t = next((a.t for a in node.attribute if a.name == "value"), None)
                if t is not None and t.data_type != string:
                    out = node.output[0]
                    kw = {"shape": self.shape(t, out), "dtype": tensor_dtype_name(t.data_type)}
                    self.add(out, kw, self._load(t, out), OnnxSource(path, "constant", out, ()))

    def _special_nodes(
        self, path: GraphPath, g: Any, inits: dict[str, Any]
    ) -> tuple[dict[str, tuple[Any, ...]], set[str]]:
        """DequantizeLinear and Cast nodes fed by initializers: the q/float16 initializer name →
        the tensor to list in its place; the scale/zero-point names to hide. One pass over the
        nodes (a map of producers, never a scan per node)."""
        special: dict[str, tuple[Any, ...]] = {}
        hidden: set[str] = set()
        producers = {o: n for n in g.node for o in n.output if o}
        for node in g.node:
            if node.domain not in ("", "ai.onnx") or not node.input or not node.output:
                continue
            src = node.input[0]
            if src not in inits or len(self.uses.get(src, ())) != 1 or src in special:
                continue
            if not node.output[0]:
                continue
            if node.op_type == "DequantizeLinear":
                entry = self._dequantized(path, node, inits, producers)
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

    def _scale_input(
        self, name: str, inits: dict[str, Any], producers: dict[str, Any]
    ) -> tuple[Any, str, str] | None:
        """The scale initializer, directly or through a Cast (float16 scales, as int4 stores)."""
        if name in inits:
            return inits[name], name, ""
        cast = producers.get(name)
        if cast is None or cast.op_type != "Cast" or not cast.input or cast.input[0] not in inits:
            return None
        if len(self.uses.get(cast.input[0], ())) != 1:
            return None
        return inits[cast.input[0]], cast.input[0], name

    def _follow(
        self, out: str, inits: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype
    ) -> tuple[str, list[Step], list[str], list[str]]:
        """Single-consumer Reshape/Transpose/Add(scalar)/Cast after a DequantizeLinear (how the
        writer restores layout, affine offsets and dtypes): final value, steps, parts, chain.
        At most `MAX_CHAIN` nodes; a chain that comes back to a value it passed is a cycle,
        which ONNX forbids, and is refused."""
        tensor = out
        steps: list[Step] = []
        parts: list[str] = []
        chain: list[str] = []
        seen = {out}
        while len(self.uses.get(out, ())) == 1 and len(steps) < MAX_CHAIN:
            node, index = self.uses[out][0]
            if not node.output or not node.output[0]:
                break
            other = [n for i, n in enumerate(node.input) if i != index and n]
            step = self._step(node, index, other, inits, shape, dtype, tensor)
            if step is None:
                break
            if node.output[0] in seen:
                raise FormatError(
                    self.path, f"the graph has a cycle: {node.op_type} output "
                    f"{node.output[0]!r} feeds back into the nodes that compute it", tensor
                )  # fmt: skip
            seen.add(node.output[0])
            steps.append(step)
            shape, dtype = step.shape, step.dtype or dtype
            parts += [n for n in other if n in inits]
            chain.append(out)
            out = node.output[0]
        return out, steps, parts, chain

    def _step(
        self,
        node: Any,
        index: int,
        other: list[str],
        inits: dict[str, Any],
        shape: tuple[int, ...],
        dtype: np.dtype,
        tensor: str,
    ) -> Step | None:
        """The numpy step of one node after a DequantizeLinear, checked on `shape`; None when
        the node is a real consumer (the chain ends before it)."""
        if node.domain not in ("", "ai.onnx"):
            return None
        src, base = self.path, self.path.parent
        op = node.op_type
        if op == "Reshape" and index == 0 and other and other[0] in inits:
            dims_t = inits[other[0]]
            if math.prod(self.shape(dims_t, tensor)) > MAX_RANK:
                raise FormatError(src, "Reshape shape input has more than 64 values", tensor)
            dims = tensor_values(dims_t, base, src, tensor)
            allowzero = int_attr(node, "allowzero", 0, src, tensor)
            return reshape_step(src, tensor, shape, dims, allowzero)
        if op == "Transpose" and not other:
            return transpose_step(src, tensor, shape, node_attr(node, "perm", None))
        if op == "Add" and len(other) == 1 and other[0] in inits:
            if math.prod(self.shape(inits[other[0]], tensor)) != 1:
                return None
            off = tensor_values(inits[other[0]], base, src, tensor)
            return Step(functools.partial(_add_scalar, offset=off), shape)
        if op == "Cast":
            to = cast_target(node, src, tensor)
            if to in _FLOATS:
                return Step(functools.partial(_as_dtype, dtype=_np_dtype(to)), shape, _np_dtype(to))
        return None

    def _dequantized(
        self, path: GraphPath, node: Any, inits: dict[str, Any], producers: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        if len(node.input) < 2 or node.input[0] not in inits:
            return None
        found = self._scale_input(node.input[1], inits, producers)
        zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if found is None or (zp_name is not None and zp_name not in inits):
            return None
        q = inits[node.input[0]]
        qdtype = tensor_dtype_name(q.data_type)
        if qdtype not in _QUANT_DTYPES:
            return None
        scale_t, scale_name, cast_out = found
        tensor, src = node.output[0], self.path
        q_shape = self.shape(q, tensor)
        zp_shape = self.shape(inits[zp_name], tensor) if zp_name else None
        axis, block = check_dq(
            src,
            tensor,
            q_shape,
            self.shape(scale_t, tensor),
            zp_shape,
            int_attr(node, "axis", 1, src, tensor),
            int_attr(node, "block_size", 0, src, tensor),
        )
        base = self.path.parent
        scale = tensor_values(scale_t, base, src, tensor)
        scale = scale.astype(np.float32) if cast_out else scale
        zp = tensor_values(inits[zp_name], base, src, tensor) if zp_name else None
        dtype = scale.dtype if scale.dtype.name in _FLOATS else np.dtype(np.float32)
        value, steps, extra, chain = self._follow(tensor, inits, q_shape, dtype)
        parts = (node.input[0], scale_name, *([zp_name] if zp_name else []), *extra)
        kw = {
            "shape": steps[-1].shape if steps else q_shape,
            "dtype": next((s.dtype for s in reversed(steps) if s.dtype), dtype).name,
            "stored": stored_quantization(qdtype, scale, zp, axis, block),
        }

        def load() -> np.ndarray:
            y = dequantize(tensor_values(q, base, src, value), scale, zp, axis, block)
            for step in steps:
                y = step.apply(y)
            return y

        removed = (*([cast_out] if cast_out else []), *chain, tensor)
        return value, kw, load, OnnxSource(path, "dequantize", value, parts, removed)

    def _cast(self, path: GraphPath, node: Any, t: Any) -> tuple[Any, ...] | None:
        onnx = require_onnx()
        dtype = tensor_dtype_name(t.data_type)
        if (
            dtype not in ("float16", "bfloat16")
            or node_attr(node, "to", 0) != onnx.TensorProto.FLOAT
        ):
            return None
        out = node.output[0]
        load = self._load(t, out)
        kw = {
            "shape": self.shape(t, out),
            "dtype": "float32",
            "stored": StoredQuantization(dtype),
        }
        return out, kw, lambda: load().astype(np.float32), OnnxSource(path, "cast", out, (t.name,))


def _io(values: Any, path: Path) -> list[dict[str, Any]]:
    out = []
    for v in values:
        tt = v.type.tensor_type
        if len(tt.shape.dim) > MAX_RANK:
            raise FormatError(path, f"graph value declares {len(tt.shape.dim)} dims", v.name)
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
    check_regular(path)
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
    reader = _Reader(path, proto, RoleFinder(proto, path), path.stat().st_size)
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
        "onnx_inputs": _io((i for i in proto.graph.input if i.name not in init_names), path),
        "onnx_outputs": _io(proto.graph.output, path),
    }
    return Model(path, "onnx", reader.tensors, metadata)


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _add_scalar(a: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return (a + offset.reshape(())).astype(a.dtype)


def _as_dtype(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return a.astype(dtype)
