"""ONNX protobuf plumbing shared by the ONNX reader, writer and the ONNX Runtime runner.

`onnx` is an optional extra: it is imported here, on first use, with a clear message when it is
absent. Graphs nest (If/Loop/Scan bodies are graphs inside node attributes), so a graph is named
by a `GraphPath`: the steps `(node index, attribute name, graph index)` from the main graph
(graph index -1 for a single-graph attribute). Tensor bytes are read on demand: inline data from
the proto, external data by positional reads from a file that must stay inside the model's
folder (never memory-mapped: a file truncated by another process while mapped kills the process
with SIGBUS; a short read is a clean error). Declared dims are checked before anything is
allocated (`declared_shape`): at most `MAX_RANK` of them, none negative, and no more elements
than the bytes that hold them can store.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from inspector.core.errors import FormatError, InspectorError
from inspector.formats._common import contained_path, read_range
from inspector.formats._mmap import check_regular

__all__ = [
    "MAX_RANK",
    "MISSING_EXTRA",
    "GraphPath",
    "declared_shape",
    "graph_at",
    "graph_label",
    "int_attr",
    "iter_graphs",
    "materialize_external",
    "node_attr",
    "require_onnx",
    "tensor_dtype_name",
    "tensor_values",
    "typed_attr",
]

MISSING_EXTRA = "ONNX support needs the optional extra: pip install 'quant-inspector[onnx]'"

GraphPath = tuple[tuple[int, str, int], ...]

MAX_RANK = 64
"""Most dims a tensor may declare (ONNX Runtime's kernels stop far below; numpy at 64)."""

_MAX_ELEMENTS = 2**59
"""Above this, even an empty tensor's shape (0, 2^62) makes numpy refuse it ("array is too
big"): the product of the non-zero dims must fit 8-byte elements in an int64 byte count."""


def require_onnx() -> ModuleType:
    """The `onnx` module, or an `InspectorError` telling the user how to install it."""
    try:
        import onnx
        import onnx.numpy_helper
    except ImportError:
        raise InspectorError(MISSING_EXTRA) from None
    return onnx


def iter_graphs(graph: Any, path: GraphPath = ()) -> Iterator[tuple[GraphPath, Any]]:
    """Every graph under `graph` (itself first), depth first, with its path."""
    onnx = require_onnx()
    yield path, graph
    for i, node in enumerate(graph.node):
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_graphs(attr.g, (*path, (i, attr.name, -1)))
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for k, g in enumerate(attr.graphs):
                    yield from iter_graphs(g, (*path, (i, attr.name, k)))


def node_attr(node: Any, name: str, default: Any) -> Any:
    """The value of a node's attribute `name`, or `default` when the node has none."""
    onnx = require_onnx()
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def typed_attr(node: Any, name: str, kind: str, default: Any) -> Any:
    """The value of attribute `name` when its type is `kind` ("INT", "INTS", …); `default`
    when the node has no such attribute; None when it has one of another type (a hostile file:
    a STRING axis, an INTS `to`), which callers treat as "cannot tell"."""
    onnx = require_onnx()
    for a in node.attribute:
        if a.name == name:
            if a.type != onnx.AttributeProto.AttributeType.Value(kind):
                return None
            return onnx.helper.get_attribute_value(a)
    return default


def int_attr(node: Any, name: str, default: int, source: Any, tensor: str) -> int:
    """A node's INT attribute `name` (`default` when absent); any other attribute type is a
    `FormatError` naming `source` and `tensor` (a STRING `axis` is not an axis)."""
    onnx = require_onnx()
    for a in node.attribute:
        if a.name == name:
            if a.type != onnx.AttributeProto.INT:
                kind = onnx.AttributeProto.AttributeType.Name(a.type)
                raise FormatError(
                    source, f"{node.op_type} attribute {name!r} is {kind}, not an integer", tensor
                )
            return int(a.i)
    return default


def declared_shape(
    tensor: Any, source: str | os.PathLike[str], name: str, max_bytes: int | None
) -> tuple[int, ...]:
    """A TensorProto's dims as a tuple, checked before anything is allocated: at most
    `MAX_RANK` dims (a long list is refused before it is copied), none negative, and no more
    elements than `max_bytes` bytes can hold (4-bit types: two per byte; None: no bound)."""
    onnx = require_onnx()
    rank = len(tensor.dims)
    if rank > MAX_RANK:
        raise FormatError(source, f"tensor declares {rank} dims (at most {MAX_RANK})", name)
    shape = tuple(int(d) for d in tensor.dims)
    if any(d < 0 for d in shape):
        raise FormatError(source, f"negative dimension in shape {list(shape)}", name)
    count = math.prod(shape)
    per_byte = 2 if tensor.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4) else 1
    if max_bytes is not None and count > per_byte * max_bytes:
        raise FormatError(
            source,
            f"shape {list(shape)} declares {count} elements, more than the {max_bytes} bytes "
            "that hold them can store",
            name,
        )
    if math.prod(d for d in shape if d) > _MAX_ELEMENTS:
        raise FormatError(source, f"shape {list(shape)} cannot be represented", name)
    return shape


def graph_at(graph: Any, path: GraphPath) -> Any:
    """The (mutable) subgraph of `graph` at `path`."""
    for node_index, attr_name, k in path:
        node = graph.node[node_index]
        attr = next(a for a in node.attribute if a.name == attr_name)
        graph = attr.g if k < 0 else attr.graphs[k]
    return graph


def graph_label(graph: Any, path: GraphPath) -> str:
    """A readable name of a subgraph, e.g. `If_3/then_branch` ("" for the main graph)."""
    parts = []
    for node_index, attr_name, k in path:
        node = graph.node[node_index]
        parts.append(node.name or f"{node.op_type}_{node_index}")
        parts.append(attr_name if k < 0 else f"{attr_name}[{k}]")
        graph = graph_at(graph, ((node_index, attr_name, k),))
    return "/".join(parts)


def tensor_dtype_name(data_type: int) -> str:
    """The numpy name of an ONNX element type (`float32`, `int4`, `bfloat16`, …)."""
    onnx = require_onnx()
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).name
    except (KeyError, TypeError, ValueError):
        return f"onnx:{data_type}"


def _unpack_4bit(packed: np.ndarray, count: int, signed: bool) -> np.ndarray:
    low = packed & 0x0F
    high = packed >> 4
    out = np.empty(packed.size * 2, dtype=np.uint8)
    out[0::2] = low
    out[1::2] = high
    out = out[:count]
    if signed:
        return ((out.astype(np.int8) ^ 8) - 8).astype(np.int8)
    return out


def _external_location(
    tensor: Any, base_dir: Path, source: str | os.PathLike[str]
) -> tuple[Path, int, int | None]:
    info = {e.key: e.value for e in tensor.external_data}
    file = contained_path(base_dir, info.get("location"), source)
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise FormatError(
            source, "external data offset/length are not integers", tensor.name
        ) from None
    return file, offset, length


def _external_bytes(
    tensor: Any, base_dir: Path, source: str | os.PathLike[str], name: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    """An external tensor's stored bytes (a new array, read at its offset) and its shape; the
    range is checked against the file's size first and the read itself fails cleanly when the
    file shrinks meanwhile."""
    onnx = require_onnx()
    file, offset, length = _external_location(tensor, base_dir, source)
    try:
        check_regular(file)
        size = file.stat().st_size
    except FormatError as exc:
        raise FormatError(file, exc.reason, name) from None
    except OSError as exc:
        raise FormatError(file, f"cannot read external data: {exc.strerror or exc}", name) from None
    shape = declared_shape(tensor, source, name, None)
    count = math.prod(shape)
    if tensor.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
        need = (count + 1) // 2
    else:
        need = count * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    if length is not None and length != need:
        raise FormatError(
            source, f"external data length {length} != {need} bytes for shape {list(shape)}", name
        )
    if offset < 0 or offset + need > size:
        raise FormatError(
            file, f"external data range {offset}+{need} runs past the file ({size} bytes)", name
        )
    return read_range([(file, offset, need)], source, name), shape


def _read_external(
    tensor: Any, base_dir: Path, source: str | os.PathLike[str], name: str
) -> np.ndarray:
    """An external tensor's values (read, not memory-mapped: see the module docstring)."""
    onnx = require_onnx()
    raw, shape = _external_bytes(tensor, base_dir, source, name)
    count = math.prod(shape)
    if tensor.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4):
        signed = tensor.data_type == onnx.TensorProto.INT4
        return _unpack_4bit(raw, count, signed).reshape(shape)
    np_dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).newbyteorder("<")
    return raw.view(np_dtype).reshape(shape)


def tensor_values(
    tensor: Any, base_dir: Path, source: str | os.PathLike[str], name: str | None = None
) -> np.ndarray:
    """A TensorProto's values as numpy (int4/uint4 widened to int8/uint8); external data is
    read from its file. Every failure is a `FormatError` naming `source` and the tensor."""
    onnx = require_onnx()
    name = name or tensor.name
    try:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            return _read_external(tensor, base_dir, source, name)
        arr = onnx.numpy_helper.to_array(tensor)
    except InspectorError:
        raise
    except Exception as exc:
        raise FormatError(source, f"cannot decode values: {exc}", name) from None
    if arr.dtype.name in ("int4", "uint4"):
        arr = arr.astype(np.int8 if arr.dtype.name == "int4" else np.uint8)
    return arr


def materialize_external(model: Any, base_dir: Path, source: str | os.PathLike[str]) -> None:
    """Replace every external-data reference in `model` (in place) by inline bytes, reading
    only files inside `base_dir`; used before handing a proto to ONNX Runtime or re-saving it."""
    onnx = require_onnx()
    for _, graph in iter_graphs(model.graph):
        tensors = list(graph.initializer)
        for node in graph.node:
            tensors += [a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR]
        for t in tensors:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                continue
            raw, _ = _external_bytes(t, base_dir, source, t.name)
            t.raw_data = raw.tobytes()
            del t.external_data[:]
            t.data_location = onnx.TensorProto.DEFAULT
