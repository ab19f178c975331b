"""The layers' inputs on calibration data, summarised as GPTQ's Hessians H = 2·X·Xᵀ/n.

One forward pass of the float model over the data serves every weight: Keras / TF.js models
run in the numpy executor with a tap on each layer that owns a treatable weight; ONNX models
run in ONNX Runtime with each such weight's consuming node's input added as a graph output.
Inputs come from the float model (not from a model whose earlier layers are already quantized,
as the reference's sequential loop does), so a tensor's codes depend on its own scheme and the
data only: a plan edit re-runs GPTQ for the tensor edited, nothing else.

Every float weight gets a `Capture`: its `LinearView` and `HessianSum`, or the reason GPTQ
cannot treat it (a bias, a BatchNorm vector, a layer inside a nested model, a weight shared by
two ONNX nodes…), which the preview shows as it falls back to nearest rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.model import Model, Tensor
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.rounding.gptq import HessianSum
from inspector.engine.rounding.linear import LinearView, NotLinear, keras_view, onnx_view

__all__ = ["Capture", "capture_hessians"]

BATCH = 64


@dataclass(frozen=True)
class Capture:
    """A weight's view and the Hessian of its inputs, or why GPTQ cannot treat it."""

    view: LinearView | None = None
    hessian: HessianSum | None = None
    reason: str = ""


def _weights(model: Model) -> list[Tensor]:
    return [t for t in model.weights if t.info.is_float and t.info.size]


def _feed(entries: list[tuple[LinearView, HessianSum]]) -> Callable[[list[np.ndarray]], None]:
    def tap(arrays: list[np.ndarray]) -> None:
        for view, hessian in entries:
            for chunk in view.inputs(arrays):
                hessian.add(chunk)

    return tap


def _keras(model: Model, inputs: Sequence[np.ndarray], batch: int) -> dict[str, Capture]:
    from inspector.engine.executor import Executor

    ex = Executor.from_model(model)
    out: dict[str, Capture] = {}
    by_layer: dict[str, list[tuple[LinearView, HessianSum]]] = {}
    for tensor in _weights(model):
        try:
            spec, role = ex.weight_role(tensor.name)
            view = keras_view(
                spec.class_name, spec.config, role, tensor.info.shape, ex.layer_weights(spec.name)
            )
        except (EvaluationUnavailable, NotLinear) as exc:
            out[tensor.name] = Capture(reason=str(exc))
            continue
        hessian = HessianSum(view.groups, view.columns)
        out[tensor.name] = Capture(view, hessian)
        by_layer.setdefault(spec.name, []).append((view, hessian))
    if by_layer:
        ex.tap(inputs, {layer: _feed(entries) for layer, entries in by_layer.items()}, batch)
    return out


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _onnx_consumers(proto: Any) -> dict[str, list[tuple[Any, int]]]:
    uses: dict[str, list[tuple[Any, int]]] = {}
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name:
                uses.setdefault(name, []).append((node, i))
    return uses


def _onnx_view(
    tensor: Tensor, source: Any, uses: Mapping[str, list[tuple[Any, int]]]
) -> tuple[LinearView, str]:
    """(view, the value name of the consuming node's data input) or NotLinear."""
    if source.graph:
        raise NotLinear("the weight lives in a subgraph (If/Loop/Scan body)")
    consumers = uses.get(source.value, [])
    if len(consumers) != 1:
        raise NotLinear(f"the weight is read by {len(consumers)} nodes, GPTQ needs exactly one")
    node, index = consumers[0]
    view = onnx_view(node.op_type, index, _attrs(node), tensor.info.shape)
    return view, node.input[0]


def _onnx(model: Model, inputs: Sequence[np.ndarray], batch: int) -> dict[str, Capture]:
    from inspector.engine.onnx_runner import OnnxExecutor

    uses = _onnx_consumers(model.metadata["onnx_proto"])
    sources = model.metadata["onnx_sources"]
    out: dict[str, Capture] = {}
    by_value: dict[str, list[tuple[LinearView, HessianSum]]] = {}
    for tensor in _weights(model):
        try:
            view, value = _onnx_view(tensor, sources[tensor.name], uses)
        except NotLinear as exc:
            out[tensor.name] = Capture(reason=str(exc))
            continue
        hessian = HessianSum(view.groups, view.columns)
        out[tensor.name] = Capture(view, hessian)
        by_value.setdefault(value, []).append((view, hessian))
    if not by_value:
        return out
    base = OnnxExecutor.from_model(model)
    names = list(by_value)
    runner = base.with_outputs(names)
    first = base.output_count
    for start in range(0, inputs[0].shape[0], batch):
        got = runner.run([x[start : start + batch] for x in inputs], batch_size=batch)
        for name, arr in zip(names, got[first:], strict=True):
            _feed(by_value[name])([arr])
    return out


def capture_hessians(
    model: Model, inputs: Sequence[np.ndarray], batch: int = BATCH
) -> dict[str, Capture]:
    """A `Capture` for every float weight of `model`, from one pass over `inputs` (one array
    per model input, samples first). Raises `EvaluationUnavailable` when the model cannot run."""
    if model.format == "onnx":
        return _onnx(model, inputs, batch)
    return _keras(model, inputs, batch)
