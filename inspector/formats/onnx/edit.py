"""Put tensors back into an ONNX graph where the reader found them (writer and runner share this).

A `Replacement` says what now produces a tensor's value name: new initializers and/or new nodes
(e.g. q + scale + zero point and a DequantizeLinear whose output keeps the value's name, so every
consumer is untouched). The old holder is removed: the initializer, the Constant node, or the
DequantizeLinear/Cast node with its input initializer (scale/zero-point initializers only when
nothing else reads them). Weights that came from a Constant node go back as Constant nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inspector.formats.onnx.proto import GraphPath, graph_at, iter_graphs, require_onnx
from inspector.formats.onnx.reader import OnnxSource

__all__ = ["NameAllocator", "Replacement", "apply_replacements"]

_NODE_KINDS = {"constant": "Constant", "dequantize": "DequantizeLinear", "cast": "Cast"}


@dataclass
class Replacement:
    """New producers of `source.value`; `initializers` may include one named `source.value`."""

    source: OnnxSource
    initializers: list[Any] = field(default_factory=list)
    nodes: list[Any] = field(default_factory=list)


class NameAllocator:
    """Fresh value names that collide with nothing in the model (graph SSA must hold). Each base
    remembers its next suffix, so N names from one base cost O(N), not O(N²)."""

    def __init__(self, model: Any) -> None:
        """Names of `model` are taken (None: none are, for size estimates)."""
        self._used: set[str] = set()
        self._next: dict[str, int] = {}
        if model is None:
            return
        for _, g in iter_graphs(model.graph):
            self._used.update(t.name for t in g.initializer)
            self._used.update(v.name for v in (*g.input, *g.output))
            for n in g.node:
                self._used.update(n.output)
                self._used.update(n.input)
                self._used.add(n.name)

    def fresh(self, base: str) -> str:
        k = self._next.get(base, 1)
        name = base if k == 1 else f"{base}_{k}"
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._next[base] = k + 1
        self._used.add(name)
        return name


def _copy(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _as_constants(rep: Replacement) -> list[Any]:
    """The replacement's initializers as Constant nodes named by their output only (a node
    name and the inner tensor's name are optional and would repeat it)."""
    helper = require_onnx().helper
    consts = []
    for t in rep.initializers:
        value = _copy(t)
        value.ClearField("name")
        consts.append(helper.make_node("Constant", [], [t.name], value=value))
    return consts + list(rep.nodes)


def _apply(g: Any, reps: Sequence[Replacement]) -> set[str]:
    """Edit one graph; returns initializer names that may now be unused (shared parameters)."""
    in_place = {r.source.value: r for r in reps if r.source.kind in _NODE_KINDS}
    front: list[Any] = []
    for r in reps:
        if r.source.kind == "initializer":
            front.extend(r.nodes)
    nodes = list(front)
    chained = {name for r in reps for name in r.source.chain}
    for n in g.node:
        out = n.output[0] if n.output else None
        found = in_place.get(out) if out is not None else None
        if found is not None and (
            n.op_type == _NODE_KINDS[found.source.kind] or found.source.chain
        ):
            nodes.extend(_as_constants(found) if found.source.kind == "constant" else found.nodes)
        elif out is None or out not in chained:
            nodes.append(_copy(n))
    drop = {r.source.parts[0] for r in reps if r.source.parts}
    maybe_unused = {p for r in reps for p in r.source.parts[1:]}
    inits = [_copy(t) for t in g.initializer if t.name not in drop]
    for r in reps:
        if r.source.kind != "constant":
            inits.extend(r.initializers)
    produced = {r.source.value for r in reps if r.nodes}
    inputs = [_copy(v) for v in g.input if v.name not in produced]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(inits)
    if len(inputs) != len(g.input):
        del g.input[:]
        g.input.extend(inputs)
    return maybe_unused


def _prune(model: Any, names: Iterable[str]) -> None:
    names = set(names)
    if not names:
        return
    used: set[str] = set()
    for _, g in iter_graphs(model.graph):
        for n in g.node:
            used.update(n.input)
        used.update(v.name for v in g.output)
    for _, g in iter_graphs(model.graph):
        keep = [t for t in g.initializer if t.name not in names or t.name in used]
        if len(keep) != len(g.initializer):
            keep = [_copy(t) for t in keep]
            del g.initializer[:]
            g.initializer.extend(keep)


def apply_replacements(model: Any, reps: Iterable[Replacement]) -> None:
    """Apply replacements to `model` (a ModelProto, edited in place), deepest graphs first so
    the graph paths of outer graphs stay valid while inner ones are rebuilt."""
    by_graph: dict[GraphPath, list[Replacement]] = {}
    for r in reps:
        by_graph.setdefault(r.source.graph, []).append(r)
    maybe_unused: set[str] = set()
    for path in sorted(by_graph, key=len, reverse=True):
        maybe_unused |= _apply(graph_at(model.graph, path), by_graph[path])
    _prune(model, maybe_unused)
