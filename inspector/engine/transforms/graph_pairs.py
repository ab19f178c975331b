"""Where the transforms may act: weighted layers, their consumers, and consecutive pairs.

A pair (Nagel et al. 2019, §4) is a weighted layer L whose output reaches exactly one other
weighted layer M through ops that commute with a positive per-channel scale: identities
(Dropout, linear), positively homogeneous activations (ReLU, LeakyReLU, PReLU: f(s·x) = s·f(x)
for s > 0), max/average pooling, zero padding, cropping and Flatten. Nothing else may read L's
output (no branch, not a model output), and L and M are each called once. ReLU6 (a ReLU capped
at 6) is not homogeneous: a pair through one is found with `capped` naming the layers whose cap
must be lifted to scale it (what AIMET and the paper do for MobileNetV2).

Only top-level layers with channels-last data take part; grouped convolutions (groups > 1) and
nested models end a chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.model import TensorInfo
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.graph import Graph, LayerSpec, TensorRef, parse_topology
from inspector.engine.layers import bind_weights, canonical
from inspector.engine.transforms.channels import Weighted

__all__ = ["LayerIndex", "Link", "chains", "find_links"]

_IDENTITY = frozenset(
    {
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Cropping1D",
        "Cropping2D",
    }
)
_MAX = frozenset({"MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D"})
_AVG = frozenset(
    {"AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D"}
)
_PAD = frozenset({"ZeroPadding1D", "ZeroPadding2D"})
_KINDS = {
    "Dense": "dense",
    "Conv1D": "conv",
    "Conv2D": "conv",
    "DepthwiseConv1D": "depthwise",
    "DepthwiseConv2D": "depthwise",
    "SeparableConv1D": "separable",
    "SeparableConv2D": "separable",
}
_RELU_NAMES = frozenset({"relu", "leakyrelu"})


def activation_kind(value: Any) -> str | None:
    """ "identity", "relu" (positively homogeneous), "relu6" (capped) or None (anything else)
    for a fused `activation` setting (string or Keras 3 dict)."""
    if isinstance(value, Mapping):
        inner = value.get("config")
        value = inner.get("name") if isinstance(inner, Mapping) else value.get("class_name")
    if value is None:
        return "identity"
    key = str(value).replace("_", "").lower()
    if key == "linear":
        return "identity"
    if key in _RELU_NAMES:
        return "relu"
    return "relu6" if key == "relu6" else None


def op_kind(spec: LayerSpec) -> str | None:
    """How a weightless layer between L and M treats a per-channel scale: "identity", "relu",
    "relu6", "max", "avg", "pad", "flatten", or None when it does not commute with one."""
    c, cls = spec.config, canonical(spec.class_name)
    fmt = c.get("data_format") or c.get("dataFormat") or "channels_last"
    if fmt not in ("channels_last", "channelsLast"):
        return None
    if cls in _IDENTITY:
        return "identity"
    if cls in _MAX:
        return "max"
    if cls in _AVG:
        return "avg"
    if cls in _PAD:
        return "pad"
    if cls == "Flatten":
        return "flatten"
    if cls in ("LeakyReLU", "PReLU"):
        return "relu"
    if cls == "Activation":
        return activation_kind(c.get("activation"))
    if cls == "ReLU":
        return _relu_layer_kind(c)
    return None


def _relu_layer_kind(c: Mapping[str, Any]) -> str | None:
    if float(c.get("threshold", 0.0) or 0.0) != 0.0:
        return None
    cap = c.get("max_value", c.get("maxValue"))
    if cap is None:
        return "relu"
    slope = float(c.get("negative_slope", 0.0) or 0.0)
    return "relu6" if slope == 0.0 and float(cap) > 0 else None


@dataclass(frozen=True)
class Link:
    """L → ops → M. `channels` is L's output channel count (M's input side is read as that
    many channels, through Flatten if `path` has one); `kinds` gives each op's kind, L's own
    fused activation first; `capped` names the layers whose ReLU6 cap is in the way."""

    first: Weighted
    second: Weighted
    path: tuple[str, ...]
    kinds: tuple[str, ...]
    capped: tuple[str, ...]
    channels: int


class LayerIndex:
    """A model's top-level graph with the weighted layers bound to their tensor names."""

    def __init__(self, keras_config: Mapping[str, Any], infos: Sequence[TensorInfo]) -> None:
        self.graph: Graph = parse_topology(keras_config)
        self.nodes = {n.layer: n for n in self.graph.nodes}
        calls: dict[str, int] = {}
        for node in self.graph.nodes:
            calls[node.layer] = calls.get(node.layer, 0) + 1
        self.calls = calls
        self.consumers: dict[str, list[str]] = {}
        for node in self.graph.nodes:
            for ref in node.inputs:
                self.consumers.setdefault(ref.layer, []).append(node.layer)
        self.outputs = {r.layer for r in self.graph.outputs}
        by_layer: dict[str, list[TensorInfo]] = {}
        for info in infos:
            by_layer.setdefault(info.layer, []).append(info)
        self.tensors = by_layer
        self.weighted: dict[str, Weighted] = {}
        for name, spec in self.graph.layers.items():
            found = _weighted(spec, by_layer.get(name, []))
            if found is not None and calls.get(name) == 1:
                self.weighted[name] = found

    def spec(self, layer: str) -> LayerSpec:
        return self.graph.layers[layer]

    def sole_consumer(self, layer: str) -> str | None:
        """The one layer reading `layer`'s output (None when several, none, or an output)."""
        users = self.consumers.get(layer, [])
        if len(users) != 1 or layer in self.outputs or self.calls.get(users[0]) != 1:
            return None
        node = self.nodes[users[0]]
        return users[0] if node.inputs == (TensorRef(layer),) else None


def bound_names(spec: LayerSpec, infos: Sequence[TensorInfo]) -> dict[str, str]:
    """Canonical weight name (`kernel`, `bias`, `gamma`, …) → tensor name, bound exactly as the
    executor binds them (by name, else by position)."""
    marks = [(info.name, np.array(i, np.float32)) for i, info in enumerate(infos)]
    bound = bind_weights(spec, marks)
    return {key: infos[int(value)].name for key, value in bound.items()}


def _weighted(spec: LayerSpec, infos: Sequence[TensorInfo]) -> Weighted | None:
    kind = _KINDS.get(canonical(spec.class_name))
    c = spec.config
    if kind is None or not infos or int(c.get("groups", 1) or 1) != 1:
        return None
    fmt = c.get("data_format") or c.get("dataFormat") or "channels_last"
    if fmt not in ("channels_last", "channelsLast"):
        return None
    try:
        names = bound_names(spec, infos)
    except EvaluationUnavailable:
        return None
    shapes = {info.name: info.shape for info in infos}
    if kind == "separable":
        out_k, in_k = names["pointwise_kernel"], names["depthwise_kernel"]
    elif kind == "depthwise":
        out_k = in_k = names["depthwise_kernel"]
    else:
        out_k = in_k = names["kernel"]
    out_ch = shapes[out_k][-2] * shapes[out_k][-1] if kind == "depthwise" else shapes[out_k][-1]
    in_ch = shapes[in_k][-2]
    bias = names.get("bias") or _bias_name(out_k)
    return Weighted(spec.name, kind, out_k, in_k, bias, int(out_ch), int(in_ch))


def _bias_name(kernel: str) -> str:
    """The name a bias the transforms add gets: the kernel's name with its last component's
    variable replaced (`conv/kernel:0` → `conv/bias:0`, `c/pointwise_kernel` → `c/bias`)."""
    head, sep, last = kernel.rpartition("/")
    _var, colon, index = last.partition(":")
    return f"{head}{sep}bias{colon}{index}"


def find_links(index: LayerIndex, allow_capped: bool = True) -> list[Link]:
    """Every pair L → ops → M in the model, in execution order of L."""
    links = []
    for node in index.graph.nodes:
        first = index.weighted.get(node.layer)
        if first is None:
            continue
        link = _follow(index, first, allow_capped)
        if link is not None:
            links.append(link)
    return links


def _follow(index: LayerIndex, first: Weighted, allow_capped: bool) -> Link | None:
    own = activation_kind(index.spec(first.layer).config.get("activation"))
    if own is None:
        return None
    kinds, path, capped = [own], [], [first.layer] if own == "relu6" else []
    layer = first.layer
    while True:
        nxt = index.sole_consumer(layer)
        if nxt is None:
            return None
        second = index.weighted.get(nxt)
        if second is not None:
            break
        kind = op_kind(index.spec(nxt))
        if kind is None:
            return None
        if kind == "relu6":
            capped.append(nxt)
        kinds.append(kind)
        path.append(nxt)
        layer = nxt
    if capped and not allow_capped:
        return None
    channels = first.out_channels
    rows = second.in_channels
    if rows != channels and not ("flatten" in kinds and rows % channels == 0):
        return None
    return Link(first, second, tuple(path), tuple(kinds), tuple(capped), channels)


def chains(links: Sequence[Link]) -> list[list[Link]]:
    """Links grouped into chains L0 → L1 → L2 … (each layer's output side in at most one
    link, its input side in at most one), in model order."""
    by_first = {link.first.layer: link for link in links}
    seconds = {link.second.layer for link in links}
    out = []
    for link in links:
        if link.first.layer in seconds:
            continue
        chain = [link]
        while chain[-1].second.layer in by_first:
            chain.append(by_first[chain[-1].second.layer])
        out.append(chain)
    return out
