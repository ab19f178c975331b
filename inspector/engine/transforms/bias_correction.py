"""Bias correction (Nagel et al. 2019, §5): undo the mean shift quantized weights cause.

With W̃ = W + ε the quantized kernel, a layer's pre-activation mean moves by ε·E[x]; subtracting
that from the (float) bias makes the quantized layer right on average. The correction depends on
the plan, so it is computed for the plan and export target at hand, on the equalized/folded
weights, and the plan then quantizes the corrected bias like any other.

- data-free: E[x] from the batch-norm statistics of the layer L feeding this one (kept when L's
  BN was folded, scaled by equalization): L's pre-activation is N(β, γ²) per channel, and the
  expectation through a ReLU / ReLU6 / LeakyReLU has a closed form (clipped normal means). Only
  where the ops between are mean-preserving (identity, average pooling, Flatten; zero padding
  and "same" convolutions are taken as approximately so); layers without such a source are
  left alone.
- empirical: the float model and the quantized model run side by side on sample data, layer
  by layer in execution order; each weighted layer's mean pre-activation shift (quantized minus
  float, over samples and positions, kernels only) is subtracted from its bias before the
  quantized stream goes on with the corrected, quantized bias — so later layers also correct
  what earlier ones left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.model import Model, Tensor, TensorInfo
from inspector.core.plan import Plan
from inspector.core.quantize import quantize_tensor
from inspector.core.target import Target
from inspector.engine.activations import activation
from inspector.engine.errors import TransformUnavailable
from inspector.engine.graph import LayerSpec, TensorRef
from inspector.engine.layers import build_layer, canonical
from inspector.engine.transforms.channels import Weighted
from inspector.engine.transforms.graph_pairs import LayerIndex, activation_kind, op_kind
from inspector.engine.transforms.workspace import Stats, Workspace

__all__ = ["EMPIRICAL_SAMPLES", "BiasRecord", "correct_biases", "expected_relu"]

EMPIRICAL_SAMPLES = 256
"""Samples the empirical variant runs at most (all at once: both models side by side)."""
_MEAN_KINDS = frozenset({"identity", "avg", "flatten", "pad"})


@dataclass(frozen=True)
class BiasRecord:
    """One corrected layer: the bias tensor, the method, and the shift subtracted per output
    channel (the layer's output units)."""

    layer: str
    bias: str
    method: str
    shift: np.ndarray
    added: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "bias": self.bias,
            "method": self.method,
            "added_bias": self.added,
            "max_abs_shift": float(np.max(np.abs(self.shift), initial=0.0)),
            "mean_abs_shift": float(np.mean(np.abs(self.shift))) if self.shift.size else 0.0,
        }


def correct_biases(
    ws: Workspace,
    staged: Model,
    plan: Plan,
    target: Target,
    method: str,
    data: Sequence[np.ndarray] | None,
) -> list[BiasRecord]:
    """Correct the biases in `ws` (whose current state `staged` is) for `plan` under `target`."""
    quantized = _Quantized(staged, plan, target)
    index = LayerIndex(ws.config, [ws.infos[n] for n in ws])
    if method == "data-free":
        return _data_free(ws, index, quantized)
    if method == "empirical":
        if data is None:
            raise TransformUnavailable("empirical bias correction needs sample data (--data)")
        return _empirical(ws, staged, index, quantized, data)
    raise ValueError(f"unknown bias correction {method!r}")


class _Quantized:
    """Decoded values of tensors under the plan (float values where the plan keeps them)."""

    def __init__(self, model: Model, plan: Plan, target: Target) -> None:
        self.model, self.plan, self.target = model, plan, target

    def values(self, name: str) -> np.ndarray:
        return self.of(self.model[name])

    def of(self, tensor: Tensor) -> np.ndarray:
        q = quantize_tensor(tensor, self.plan.scheme_for(tensor.info), self.target)
        decoded = q.decoded if q.skipped is None else q.original
        return np.asarray(decoded, dtype=np.float32).reshape(tensor.info.shape)

    def array(self, info: TensorInfo, value: np.ndarray) -> np.ndarray:
        """`value` (a new bias) quantized as the plan will quantize that tensor."""
        frozen = np.asarray(value, dtype=np.float32)
        return self.of(Tensor(info, lambda: frozen))


def _apply(ws: Workspace, w: Weighted, shift: np.ndarray, method: str) -> BiasRecord:
    added = ws.ensure_bias(w)
    w.scale_out(ws, np.ones(w.out_channels), -shift)
    return BiasRecord(w.layer, w.bias, method, shift, added)


# --------------------------------------------------------------------------- data-free


def _normal_pdf_cdf(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf, otypes=[float])(z / math.sqrt(2.0)))
    return pdf, cdf


def expected_relu(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """E[max(y, 0)] for y ~ N(mean, std²) per channel (std 0: max(mean, 0))."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    safe = np.where(std > 0, std, 1.0)
    pdf, cdf = _normal_pdf_cdf(mean / safe)
    return np.where(std > 0, mean * cdf + safe * pdf, np.maximum(mean, 0.0))


def _expected(fn: tuple[float, float | None] | None, stats: Stats) -> np.ndarray:
    """E[f(y)] for f(y) = slope·min(y, 0) + min(max(y, 0), cap) (None: identity)."""
    if fn is None:
        return stats.mean.copy()
    slope, cap = fn
    pos = expected_relu(stats.mean, stats.std)
    if cap is not None:
        pos = pos - expected_relu(stats.mean - cap, stats.std)
    return pos + slope * (stats.mean - expected_relu(stats.mean, stats.std))


def _piecewise(spec: LayerSpec | None, fused: Any) -> tuple[float, float | None] | str | None:
    """(negative slope, cap) of a ReLU-family function, None for identity, "other" else."""
    if spec is None or canonical(spec.class_name) == "Activation":
        name = fused if spec is None else spec.config.get("activation")
        kind = activation_kind(name)
        if kind == "identity":
            return None
        if kind == "relu6":
            return (0.0, 6.0)
        key = str(name).replace("_", "").lower()
        return (0.0, None) if key == "relu" else (0.2, None) if key == "leakyrelu" else "other"
    c = spec.config
    if spec.class_name == "ReLU" and not float(c.get("threshold", 0.0) or 0.0):
        cap = c.get("max_value", c.get("maxValue"))
        return (float(c.get("negative_slope", 0.0) or 0.0), None if cap is None else float(cap))
    if spec.class_name == "LeakyReLU":
        return (float(c.get("negative_slope", c.get("alpha", 0.3))), None)
    return None if op_kind(spec) in _MEAN_KINDS else "other"


def _source(index: LayerIndex, layer: str) -> tuple[str, list[Any]] | None:
    """(L, the functions from L's pre-activation to `layer`'s input) walking back through
    single-input ops; None when the path has something not mean-tractable."""
    fns: list[Any] = []
    node = index.nodes[layer]
    while True:
        if len(node.inputs) != 1 or node.inputs[0] != TensorRef(node.inputs[0].layer):
            return None
        prev = node.inputs[0].layer
        if prev in index.weighted:
            fns.append(_piecewise(None, index.spec(prev).config.get("activation")))
            return prev, fns[::-1]
        if prev not in index.nodes or index.calls.get(prev) != 1:
            return None
        spec = index.spec(prev)
        if op_kind(spec) is None and spec.class_name != "ReLU":
            return None
        fns.append(_piecewise(spec, None))
        node = index.nodes[prev]


def _data_free(ws: Workspace, index: LayerIndex, q: _Quantized) -> list[BiasRecord]:
    records = []
    for layer, w in index.weighted.items():
        found = _source(index, layer)
        if found is None or found[0] not in ws.stats:
            continue
        nonlinear = [f for f in found[1] if f is not None]
        if any(f == "other" for f in nonlinear) or len(nonlinear) > 1:
            continue
        mean_in = _expected(nonlinear[0] if nonlinear else None, ws.stats[found[0]])
        names = dict.fromkeys((w.in_kernel, w.out_kernel))
        quant = {n: q.values(n) for n in names}
        shift = w.in_to_out(quant, mean_in) - w.in_to_out(ws, mean_in)
        if np.any(shift):
            records.append(_apply(ws, w, shift, "data-free"))
    return records


# --------------------------------------------------------------------------- empirical


def _linear_op(spec: LayerSpec, kernels: list[tuple[str, np.ndarray]], keras3: bool) -> Any:
    """The layer without its bias and activation: W·x only."""
    config = {**spec.config, "activation": "linear", "use_bias": False}
    return build_layer(LayerSpec(spec.name, spec.class_name, config), kernels, keras3)


def _empirical(
    ws: Workspace,
    staged: Model,
    index: LayerIndex,
    q: _Quantized,
    data: Sequence[np.ndarray],
) -> list[BiasRecord]:
    from inspector.engine.executor import Executor

    float_ex = Executor.from_model(staged)
    quant_ex = float_ex.with_weights({t.name: q.of(t) for t in staged.weights})
    graph = float_ex.graph
    xs = [np.asarray(x[:EMPIRICAL_SAMPLES], dtype=np.float32) for x in data]
    vf: dict[TensorRef, np.ndarray] = dict(zip(graph.inputs, xs, strict=True))
    vq = dict(vf)
    last = {ref: step for step, node in enumerate(graph.nodes) for ref in node.inputs}
    records = []
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for step, node in enumerate(graph.nodes):
            inf, inq = [vf[r] for r in node.inputs], [vq[r] for r in node.inputs]
            w = index.weighted.get(node.layer)
            if w is None:
                out_f, out_q = float_ex.op(node.layer)(inf), quant_ex.op(node.layer)(inq)
            else:
                out_f, out_q, record = _correct_layer(ws, index, q, w, inf, inq, graph.keras3)
                records.append(record)
            vf[TensorRef(node.layer, node.call)] = np.asarray(out_f, np.float32)
            vq[TensorRef(node.layer, node.call)] = np.asarray(out_q, np.float32)
            for ref in [r for r, s in last.items() if s == step and r not in graph.outputs]:
                vf.pop(ref, None)
                vq.pop(ref, None)
    return [r for r in records if np.any(r.shift)]


def _correct_layer(
    ws: Workspace,
    index: LayerIndex,
    q: _Quantized,
    w: Weighted,
    inf: list[np.ndarray],
    inq: list[np.ndarray],
    keras3: bool,
) -> tuple[np.ndarray, np.ndarray, BiasRecord]:
    spec = index.spec(w.layer)
    kernels = [n for n in dict.fromkeys((w.in_kernel, w.out_kernel))]
    pre_f = _linear_op(spec, [(n, ws[n]) for n in kernels], keras3)(inf)
    pre_q = _linear_op(spec, [(n, q.values(n)) for n in kernels], keras3)(inq)
    diff = np.asarray(pre_q, np.float64) - pre_f
    shift = diff.reshape(-1, diff.shape[-1]).mean(axis=0)
    bias_f = np.asarray(ws[w.bias], np.float64) if w.bias in ws else 0.0
    record = _apply(ws, w, shift, "empirical")
    bias_q = q.array(ws.infos[w.bias], ws[w.bias])
    act = activation(spec.config.get("activation"), keras3, f"layer {w.layer!r}: ")
    return act(pre_f + bias_f), act(pre_q + bias_q), record
