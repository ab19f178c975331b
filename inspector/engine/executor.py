"""The numpy executor: a Keras / TF.js Layers model's forward pass, float32, in batches."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.engine import shapes as _shapes  # noqa: F401  (registers the weightless layers)
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.graph import MODEL_CLASSES, Graph, LayerSpec, TensorRef, parse_topology
from inspector.engine.layers import Op, bind_weights, build_layer, weight_roles

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["Executor"]

WeightList = list[tuple[str, np.ndarray]]
Tap = Callable[[list[np.ndarray]], None]
ACTIVATION_BUDGET = 5_000_000
"""Values one step may write per batch (`Executor.batch_for`): ~20 MB of float32, tens of ms
(MobileNetV2 at 224×224: 4 samples; one sample per batch ran it 2× slower, 4 as fast as 8)."""


class Executor:
    """Runs a model's forward pass from its topology and weights.

    Built once per model; `with_weights` gives a cheap copy with some weights replaced (the
    dequantized ones), rebuilding only the layers those weights belong to.
    """

    def __init__(
        self,
        graph: Graph,
        weights: Mapping[str, WeightList],
        tensor_keys: Mapping[str, tuple[str, int]] | None = None,
        ops: Mapping[str, Op] | None = None,
    ) -> None:
        self._graph = graph
        self._weights = dict(weights)
        self._tensor_keys = dict(tensor_keys or {})
        used = {node.layer for node in graph.nodes}
        built = dict(ops or {})
        for name in used - built.keys():
            built[name] = _build(graph.layers[name], self._weights_for(name), graph.keras3)
        self._ops = built
        self._release = _release_plan(graph)
        self._rounding: Callable[[str, np.ndarray], np.ndarray] | None = None
        self._costs: dict[tuple[tuple[int, ...], ...], list[int]] = {}

    def _weights_for(self, layer: str) -> WeightList:
        """A layer's weights; a nested model also owns the groups named `<layer>/<inner>`."""
        own = list(self._weights.get(layer, []))
        if self._graph.layers[layer].class_name in MODEL_CLASSES:
            prefix = f"{layer}/"
            for key, group in self._weights.items():
                if key.startswith(prefix):
                    own.extend(group)
        return own

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls, keras_config: dict, weights: Mapping[str, Sequence[tuple[str, np.ndarray]]]
    ) -> Executor:
        """From a Keras 2 / Keras 3 / TF.js topology dict and layer name -> [(weight name,
        array), …] in file order."""
        graph = parse_topology(keras_config)
        return cls(graph, {k: list(v) for k, v in weights.items()})

    @classmethod
    def from_model(
        cls, model: Model, overrides: Mapping[str, np.ndarray] | None = None
    ) -> Executor:
        """From an opened model (its `metadata["keras_config"]`); `overrides` replace tensor
        values by tensor name (e.g. the dequantized weights)."""
        config = model.metadata.get("keras_config")
        if not config:
            raise EvaluationUnavailable("model has no layer topology")
        overrides = overrides or {}
        weights: dict[str, WeightList] = {}
        keys: dict[str, tuple[str, int]] = {}
        for tensor in model.weights:
            layer = tensor.info.layer
            value = overrides[tensor.name] if tensor.name in overrides else tensor.load()
            group = weights.setdefault(layer, [])
            keys[tensor.name] = (layer, len(group))
            group.append((tensor.info.name, np.asarray(value)))
        return cls(parse_topology(config), weights, keys)

    def with_weights(self, overrides: Mapping[Any, np.ndarray]) -> Executor:
        """A copy with weights replaced, keyed by tensor name (as in `from_model`) or by
        (layer, weight name)."""
        weights = {k: list(v) for k, v in self._weights.items()}
        changed: set[str] = set()
        for key, value in overrides.items():
            layer, index = self._locate(key)
            name, old = weights[layer][index]
            if np.shape(value) != old.shape:
                raise EvaluationUnavailable(
                    f"weight {name!r} of layer {layer!r}: replacement shape "
                    f"{np.shape(value)} differs from {old.shape}"
                )
            weights[layer][index] = (name, np.asarray(value))
            changed.add(layer if layer in self._graph.layers else layer.split("/", 1)[0])
        ops = {k: v for k, v in self._ops.items() if k not in changed}
        copy = Executor(self._graph, weights, self._tensor_keys, ops).with_rounding(self._rounding)
        copy._costs = self._costs
        return copy

    def with_rounding(self, rounding: Callable[[str, np.ndarray], np.ndarray] | None) -> Executor:
        """A copy that passes the model inputs and every layer's output through
        `rounding(layer name, array)` (e.g. to float16, `inspector.engine.arith`)."""
        copy = Executor(self._graph, self._weights, self._tensor_keys, self._ops)
        copy._rounding = rounding
        copy._costs = self._costs
        return copy

    def _locate(self, key: Any) -> tuple[str, int]:
        if isinstance(key, str) and key in self._tensor_keys:
            return self._tensor_keys[key]
        if isinstance(key, tuple) and len(key) == 2:
            layer, wname = key
            for i, (name, _) in enumerate(self._weights.get(layer, [])):
                if name == wname or name.rsplit("/", 1)[-1].split(":")[0] == wname:
                    return layer, i
        raise EvaluationUnavailable(f"no weight {key!r} in this model")

    # ------------------------------------------------------------------ running

    @property
    def input_shapes(self) -> list[tuple[int | None, ...]]:
        """Per model input, batch dimension None."""
        return [(None, *shape[1:]) for shape in self._graph.input_shapes]

    @property
    def output_count(self) -> int:
        return len(self._graph.outputs)

    @property
    def graph(self) -> Graph:
        return self._graph

    def op(self, layer: str) -> Op:
        """The forward function of one layer of the graph (as `forward` runs it)."""
        return self._ops[layer]

    def weight_role(self, tensor_name: str) -> tuple[LayerSpec, str]:
        """(the layer spec, the canonical role such as `kernel`) of a tensor of the model this
        executor was built from (`from_model`); EvaluationUnavailable when it has none."""
        layer, index = self._locate(tensor_name)
        spec = self._graph.layers.get(layer)
        if spec is None:
            raise EvaluationUnavailable(f"tensor {tensor_name!r} is not in a top-level layer")
        names = [name for name, _ in self._weights[layer]]
        return spec, weight_roles(spec, names)[index]

    def layer_weights(self, layer: str) -> dict[str, np.ndarray]:
        """A top-level layer's current weights (float32) by canonical role."""
        return bind_weights(self._graph.layers[layer], self._weights.get(layer, []))

    def run(self, inputs: Sequence[np.ndarray], batch_size: int = 256) -> list[np.ndarray]:
        """Outputs (float32, one array per model output) for inputs batched on axis 0."""
        xs = self._check_inputs(inputs)
        n = xs[0].shape[0]
        chunks: list[list[np.ndarray]] = []
        with np.errstate(over="ignore", under="ignore"):
            for start in range(0, max(n, 1), max(1, int(batch_size))):
                chunks.append(self.forward([x[start : start + batch_size] for x in xs]))
        return [np.concatenate([c[i] for c in chunks]) for i in range(self.output_count)]

    def trace(self, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Every layer's output (its first call) on one batch, by layer name: for per-layer
        checks and activation statistics."""
        seen: dict[str, np.ndarray] = {}
        with np.errstate(over="ignore", under="ignore"):
            self.forward(self._check_inputs(inputs), seen)
        return seen

    def tap(
        self, inputs: Sequence[np.ndarray], taps: Mapping[str, Tap], batch_size: int = 256
    ) -> None:
        """Run `inputs` through the model in batches, handing every call of each layer named in
        `taps` its input arrays (`taps[layer](arrays)`) before the layer runs: how GPTQ sees a
        layer's inputs. Layers inside a nested model are not reached; outputs are dropped."""
        xs = self._check_inputs(inputs)
        step = max(1, int(batch_size))
        with np.errstate(over="ignore", under="ignore"):
            for start in range(0, xs[0].shape[0], step):
                self.forward([x[start : start + step] for x in xs], taps=taps)

    def forward(
        self,
        inputs: Sequence[np.ndarray],
        seen: dict[str, np.ndarray] | None = None,
        taps: Mapping[str, Tap] | None = None,
    ) -> list[np.ndarray]:
        """One batch through the graph, no shape checks (used by `run` and nested models);
        `seen`, when given, collects each layer's first output; `taps` see layers' inputs."""
        values = self.start_values(inputs)
        for _ in self.iter_steps(values, 0, seen, taps):
            pass
        return self.outputs_of(values)

    def start_values(self, inputs: Sequence[np.ndarray]) -> dict[TensorRef, np.ndarray]:
        """The live tensors before the first layer runs (the model inputs), for `iter_steps`."""
        values: dict[TensorRef, np.ndarray] = dict(zip(self._graph.inputs, inputs, strict=True))
        rnd = self._rounding
        if rnd is not None:
            values = {ref: rnd(ref.layer, v) for ref, v in values.items()}
        return values

    def iter_steps(
        self,
        values: dict[TensorRef, np.ndarray],
        start: int = 0,
        seen: dict[str, np.ndarray] | None = None,
        taps: Mapping[str, Tap] | None = None,
        stop: int | None = None,
    ) -> Generator[int, None, None]:
        """Run graph steps `start` … `stop - 1` on `values` (the live tensors before `start`),
        updating it in place; yields each step's index after it ran, so a caller can stop
        between layers (cancellation) or count work. A copy of `values` taken between steps
        is a resumable point: another executor that differs only in layers at or after that
        step continues from it to the same result as its own full forward pass."""
        rnd = self._rounding
        nodes = self._graph.nodes
        end = len(nodes) if stop is None else min(stop, len(nodes))
        for step in range(start, end):
            node = nodes[step]
            args = [values[r] for r in node.inputs]
            if taps is not None and node.layer in taps:
                taps[node.layer](args)
            result = self._ops[node.layer](args)
            outs = result if isinstance(result, list) else [result]
            for i, out in enumerate(outs):
                out = out.astype(np.float32, copy=False)
                values[TensorRef(node.layer, node.call, i)] = (
                    out if rnd is None else rnd(node.layer, out)
                )
            if seen is not None:
                seen.setdefault(node.layer, values[TensorRef(node.layer, node.call, 0)])
            for ref in self._release[step]:
                values.pop(ref, None)
            yield step

    def outputs_of(self, values: Mapping[TensorRef, np.ndarray]) -> list[np.ndarray]:
        """The model outputs from the live tensors after the last step."""
        return [values[r] for r in self._graph.outputs]

    def first_step(self, layers: Iterable[str]) -> int:
        """The first graph step that calls any of `layers` (a nested model's `outer/inner`
        counts as `outer`); the step count when none runs. Steps before it compute the same
        values whatever those layers' weights are."""
        tops = {
            layer.split("/", 1)[0] if layer not in self._graph.layers else layer for layer in layers
        }
        for step, node in enumerate(self._graph.nodes):
            if node.layer in tops:
                return step
        return len(self._graph.nodes)

    @property
    def step_count(self) -> int:
        return len(self._graph.nodes)

    def step_costs(self, inputs: Sequence[np.ndarray]) -> list[int]:
        """Per graph step, the elements it writes for one sample (its first output's size,
        from a one-sample pass): a proxy for the step's time, used to size batches and to
        weight progress. Kept per graph: every `with_weights` copy shares it."""
        key = tuple(tuple(np.shape(x)[1:]) for x in inputs)
        cached = self._costs.get(key)
        if cached is None:
            one = self._check_inputs([np.asarray(x)[:1] for x in inputs])
            values = self.start_values(one)
            cached = []
            nodes = self._graph.nodes
            with np.errstate(all="ignore"):
                for step in self.iter_steps(values):
                    node = nodes[step]
                    out = values.get(TensorRef(node.layer, node.call, 0))
                    cached.append(max(1, int(out.size) if out is not None else 1))
            self._costs[key] = cached
        return cached

    def batch_for(self, inputs: Sequence[np.ndarray], elements: int = ACTIVATION_BUDGET) -> int:
        """Samples per batch so that no step writes more than `elements` values at once:
        one step then takes tens of milliseconds, the granularity of progress and cancel."""
        peak = max(self.step_costs(inputs), default=1)
        return max(1, min(256, elements // peak))

    def prepare(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """`inputs` checked against the model's input shapes and cast to float32 (what
        `iter_steps` expects, sliced into batches); EvaluationUnavailable when they differ."""
        return self._check_inputs(inputs)

    def _check_inputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if len(inputs) != len(self._graph.inputs):
            raise EvaluationUnavailable(
                f"the model has {len(self._graph.inputs)} inputs, {len(inputs)} arrays given"
            )
        xs = []
        for i, (x, shape) in enumerate(zip(inputs, self.input_shapes, strict=True)):
            x = np.asarray(x)
            want = shape[1:]
            if x.ndim != len(shape) or any(
                w is not None and w != d for w, d in zip(want, x.shape[1:], strict=True)
            ):
                raise EvaluationUnavailable(
                    f"input {i} has shape {x.shape}, the model expects {shape}"
                )
            xs.append(x.astype(np.float32, copy=False))
        if len({x.shape[0] for x in xs}) > 1:
            raise EvaluationUnavailable("the model inputs have different batch sizes")
        return xs


def _release_plan(graph: Graph) -> list[list[TensorRef]]:
    """For each step, the tensors no later step needs (so a deep model keeps memory flat)."""
    last: dict[TensorRef, int] = {}
    for step, node in enumerate(graph.nodes):
        for ref in node.inputs:
            last[ref] = step
    keep = set(graph.outputs)
    plan: list[list[TensorRef]] = [[] for _ in graph.nodes]
    for ref, step in last.items():
        if ref not in keep:
            plan[step].append(ref)
    return plan


def _build(spec: LayerSpec, weights: WeightList, keras3: bool) -> Op:
    if spec.class_name in MODEL_CLASSES:
        return _nested(spec, weights)
    return build_layer(spec, weights, keras3)


def _nested(spec: LayerSpec, weights: WeightList) -> Op:
    """A model used as a layer: its weights are split among its own layers by the layer name
    found in each weight's path, else in order of its layers."""
    graph = parse_topology({"class_name": spec.class_name, "config": spec.config})
    names = set(graph.layers)
    groups: dict[str, WeightList] = {}
    unplaced: WeightList = []
    for name, value in weights:
        parts = name.split("/")[:-1]
        owner = next((p for p in reversed(parts) if p in names), None)
        if owner is None:
            unplaced.append((name, value))
        else:
            groups.setdefault(owner, []).append((name, value))
    if unplaced and groups:
        raise EvaluationUnavailable(
            f"layer {spec.name!r} of class {spec.class_name}: cannot place weight "
            f"{unplaced[0][0]!r} in the nested model"
        )
    if unplaced:
        raise EvaluationUnavailable(
            f"layer {spec.name!r} of class {spec.class_name}: nested model weights do not "
            "name their layers"
        )
    inner = Executor(graph, groups)
    return lambda xs: inner.forward(xs)[0] if inner.output_count == 1 else inner.forward(xs)
