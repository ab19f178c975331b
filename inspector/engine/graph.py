"""Parse a Keras / TF.js Layers topology (Keras 2 or Keras 3 JSON) into one executable graph.

Keras 2 (tf.keras `.h5` `model_config`, TF.js `modelTopology`) lists a layer's calls as
`[[["layer", node, tensor, {kwargs}], …], …]`; Keras 3 (`.keras` `config.json`) as
`[{"args": [<__keras_tensor__ with keras_history [layer, node, tensor]>, …], "kwargs": {}}]`.
Both become `Node`s in topological order, pruned to what the outputs need.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from inspector.engine.errors import EvaluationUnavailable

__all__ = ["MODEL_CLASSES", "Graph", "LayerSpec", "Node", "TensorRef", "parse_topology"]

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
_SHAPE_KEYS = ("batch_input_shape", "batch_shape", "batchInputShape")


@dataclass(frozen=True)
class TensorRef:
    """Output `index` of call number `node` of layer `layer`."""

    layer: str
    node: int = 0
    index: int = 0


@dataclass(frozen=True)
class LayerSpec:
    name: str
    class_name: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class Node:
    """One call of a layer on some tensors (a layer shared by two branches has two nodes)."""

    layer: str
    call: int
    inputs: tuple[TensorRef, ...]


@dataclass(frozen=True)
class Graph:
    """A model's layers and calls in execution order; `keras3` selects Keras 3 semantics
    where the two versions differ (hard_sigmoid, gelu defaults)."""

    name: str
    layers: Mapping[str, LayerSpec]
    nodes: tuple[Node, ...]
    inputs: tuple[TensorRef, ...]
    outputs: tuple[TensorRef, ...]
    input_shapes: tuple[tuple[int | None, ...], ...]
    input_dtypes: tuple[str, ...]
    keras3: bool


def parse_topology(keras_config: Mapping[str, Any]) -> Graph:
    """A `Graph` from `{"class_name": "Sequential"|"Functional"|"Model", "config": …}`.

    Also accepts the wrappers readers meet: `{"model_config": …}` (TF.js modelTopology).
    """
    if not isinstance(keras_config, Mapping):
        raise EvaluationUnavailable("the model topology is not a JSON object")
    if "model_config" in keras_config and "class_name" not in keras_config:
        keras_config = keras_config["model_config"]
    class_name = keras_config.get("class_name")
    config = keras_config.get("config")
    if class_name not in MODEL_CLASSES or config is None:
        raise EvaluationUnavailable(f"model class {class_name!r} is not a Keras layer graph")
    keras3 = _looks_keras3(keras_config)
    if class_name == "Sequential":
        return _sequential(config, keras3)
    return _functional(config, keras3)


def _looks_keras3(obj: Any) -> bool:
    """Keras 3 writes `module`/`registered_name` beside every class and dict dtype policies."""
    if not isinstance(obj, Mapping):
        return False
    if "module" in obj and "registered_name" in obj:
        return True
    config = obj.get("config")
    layers = config.get("layers", []) if isinstance(config, Mapping) else config or []
    return any(isinstance(layer, Mapping) and "registered_name" in layer for layer in layers)


def _layer_name(entry: Mapping[str, Any]) -> str:
    name = entry.get("name") or entry.get("config", {}).get("name")
    if not isinstance(name, str):
        raise EvaluationUnavailable(f"a layer of class {entry.get('class_name')!r} has no name")
    return name


def _batch_shape(config: Mapping[str, Any]) -> tuple[int | None, ...] | None:
    for key in _SHAPE_KEYS:
        if config.get(key) is not None:
            return tuple(None if d is None else int(d) for d in config[key])
    for key in ("input_shape", "inputShape"):
        if config.get(key) is not None:
            return (None, *(None if d is None else int(d) for d in config[key]))
    return None


def _spec(entry: Mapping[str, Any]) -> LayerSpec:
    return LayerSpec(_layer_name(entry), str(entry.get("class_name")), entry.get("config") or {})


def _sequential(config: Any, keras3: bool) -> Graph:
    entries = config if isinstance(config, list) else config.get("layers", [])
    if not entries:
        raise EvaluationUnavailable("the Sequential model has no layers")
    specs = [_spec(e) for e in entries]
    if specs[0].class_name == "InputLayer":
        first, specs = specs[0], specs[1:]
        shape = _batch_shape(first.config)
        dtype = _dtype_name(first.config.get("dtype"))
    else:
        first = LayerSpec(f"{specs[0].name}__input", "InputLayer", {})
        shape = _batch_shape(specs[0].config)
        if shape is None and isinstance(config, Mapping):
            build = config.get("build_input_shape")
            shape = tuple(build) if build is not None else None
        dtype = "float32"
    if shape is None:
        raise EvaluationUnavailable("the Sequential model does not say its input shape")
    nodes, prev = [], TensorRef(first.name)
    for spec in specs:
        nodes.append(Node(spec.name, 0, (prev,)))
        prev = TensorRef(spec.name)
    layers = {first.name: first, **{s.name: s for s in specs}}
    name = config.get("name", "sequential") if isinstance(config, Mapping) else "sequential"
    return Graph(
        name, layers, tuple(nodes), (TensorRef(first.name),), (prev,), (shape,), (dtype,), keras3
    )


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, Mapping):
        dtype = dtype.get("config", {}).get("name", "float32")
    return str(dtype or "float32")


def _refs(items: Any) -> tuple[TensorRef, ...]:
    """`[name, node, tensor]` triples: one triple, or a list of them (Keras 3 flattens one)."""
    if not items:
        return ()
    if isinstance(items[0], str):
        items = [items]
    return tuple(TensorRef(str(i[0]), int(i[1]), int(i[2])) for i in items)


def _keras_tensors(obj: Any) -> Iterator[TensorRef]:
    """Every `__keras_tensor__` in a Keras 3 call's args, in order."""
    if isinstance(obj, Mapping):
        if obj.get("class_name") == "__keras_tensor__":
            layer, node, index = obj["config"]["keras_history"]
            yield TensorRef(str(layer), int(node), int(index))
        else:
            for value in obj.values():
                yield from _keras_tensors(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _keras_tensors(value)


def _node_inputs(node: Any) -> tuple[TensorRef, ...]:
    if isinstance(node, Mapping):
        return tuple(_keras_tensors(node.get("args", [])))
    return tuple(TensorRef(str(i[0]), int(i[1]), int(i[2])) for i in node)


def _functional(config: Mapping[str, Any], keras3: bool) -> Graph:
    layers: dict[str, LayerSpec] = {}
    calls: dict[tuple[str, int], Node] = {}
    for entry in config.get("layers", []):
        spec = _spec(entry)
        layers[spec.name] = spec
        first = 1 if not keras3 and _skips_first_node(spec) else 0
        for call, inbound in enumerate(entry.get("inbound_nodes") or [], start=first):
            calls[(spec.name, call)] = Node(spec.name, call, _node_inputs(inbound))
    inputs, outputs = _refs(config.get("input_layers")), _refs(config.get("output_layers"))
    shapes, dtypes = [], []
    for ref in inputs:
        spec = layers.get(ref.layer)
        shape = _batch_shape(spec.config) if spec else None
        if shape is None:
            raise EvaluationUnavailable(f"model input {ref.layer!r} has no known shape")
        shapes.append(shape)
        dtypes.append(_dtype_name(spec.config.get("dtype")))
    nodes = _topological(calls, {r.layer for r in inputs}, outputs)
    return Graph(
        str(config.get("name", "model")),
        layers,
        nodes,
        inputs,
        outputs,
        tuple(shapes),
        tuple(dtypes),
        keras3,
    )


def _skips_first_node(spec: LayerSpec) -> bool:
    """Keras 2 numbers the calls of a nested model from 1: its call 0 is its own Input."""
    if spec.class_name not in MODEL_CLASSES:
        return False
    layers = spec.config.get("layers") if isinstance(spec.config, Mapping) else spec.config
    return bool(layers) and layers[0].get("class_name") == "InputLayer"


def _topological(
    calls: Mapping[tuple[str, int], Node], input_layers: set[str], outputs: tuple[TensorRef, ...]
) -> tuple[Node, ...]:
    """Depth-first from the outputs: only the calls the outputs depend on, inputs first."""
    order: list[Node] = []
    done: set[tuple[str, int]] = set()
    stack: list[tuple[tuple[str, int], bool]] = [((r.layer, r.node), False) for r in outputs]
    while stack:
        key, expanded = stack.pop()
        if key in done or key[0] in input_layers:
            continue
        node = calls.get(key)
        if node is None:
            raise EvaluationUnavailable(f"the topology refers to a missing call {key}")
        if expanded:
            done.add(key)
            order.append(node)
            continue
        stack.append((key, True))
        stack.extend(
            ((r.layer, r.node), False) for r in node.inputs if (r.layer, r.node) not in done
        )
    return tuple(order)
